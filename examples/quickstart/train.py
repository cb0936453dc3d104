"""Train the iris demo model (scikit-learn's bundled dataset; nothing is downloaded)."""

import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.svm import SVC


def train(path: str) -> float:
    """Fit an SVC on iris, save it to ``path`` and return the training accuracy."""
    features, labels = load_iris(return_X_y=True)
    model = SVC(gamma="scale").fit(features, labels)
    joblib.dump(model, path)
    return float(model.score(features, labels))


if __name__ == "__main__":
    print(f"accuracy {train(sys.argv[1] if len(sys.argv) > 1 else 'model.pkl'):.3f}")
