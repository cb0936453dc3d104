"""Azure import paths inside a replica: Model.get_model_path and both AMLResponse modules."""

from azureml.core.model import Model
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

paths = {}


def init():
    paths["latest"] = Model.get_model_path("iris")
    paths["v1"] = Model.get_model_path("iris", version=1)


@rawhttp
def run(request):
    name = request.args.get("name")
    if name:
        try:
            return {"path": Model.get_model_path(name)}
        except Exception as exc:
            return AMLResponse({"error": str(exc)}, 404, json_str=True)
    return paths
