"""Entry script of the iris demo: the same file Azure ML v1 would run."""

import os

import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema

model = None


def init():
    """Load the model once per worker."""
    global model
    # AZUREML_MODEL_DIR points at <models>/<name>/<version>; the registered file sits inside.
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))


@input_schema("data", NumpyParameterType(np.array([[5.1, 3.5, 1.4, 0.2]])))
@output_schema(NumpyParameterType(np.array([0])))
def run(data):
    """Predict iris classes for rows of four measurements."""
    return model.predict(data).tolist()
