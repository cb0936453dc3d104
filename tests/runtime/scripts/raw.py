"""@rawhttp entry script: echoes what it sees of the request through the werkzeug-like API."""

import json

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    assert isinstance(request, AMLRequest) or hasattr(request, "get_data")
    payload = request.get_json() if request.args.get("json") == "1" else None
    files = {name: [f.filename, f.read().decode()] for name, f in request.files.items()}
    echo = {
        "method": request.method,
        "args": request.args.to_dict(flat=False),
        "full_path": request.full_path,
        "data": request.get_data(as_text=True),
        "json": payload,
        "form": request.form.to_dict(),
        "files": files,
        "probe": request.headers.get("X-Probe"),
    }
    status = int(request.args.get("status", "200"))
    return AMLResponse(json.dumps(echo), status, {"Content-Type": "application/json", "X-Custom": "yes"})
