"""The usual Azure ML sample: a scikit-learn model loaded from AZUREML_MODEL_DIR in init()."""

import json
import os
import pickle

import numpy as np

model = None


def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as source:
        model = pickle.load(source)


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
