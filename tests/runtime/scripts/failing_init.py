"""init() raises: the server must log the traceback and exit non-zero."""


def init():
    raise RuntimeError("init exploded: the model file is missing")


def run(data):
    return data
