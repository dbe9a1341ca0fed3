"""Our estimator inside a scikit-learn Pipeline, cross-validated beside scikit-learn's own MLP."""
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from backprop import MLPClassifier

X, y = load_breast_cancer(return_X_y=True)
warnings.simplefilter("ignore", ConvergenceWarning)
for name, est in (("backprop", MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0)),
                  ("scikit-learn", SkMLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0))):
    scores = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=5)
    print(f"{name:12s} 5-fold accuracy {scores.mean():.3f}")
