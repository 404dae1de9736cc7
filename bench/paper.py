"""The published numbers we measure against (../shared/reference/PAPERS.md, LIFT Table 4 and its
regression table), for the data sets we have offline. Classification: accuracy in %, mean over
LIFT's 3 splits; regression: RAE, mean over 3 simulations. Our names → the paper's columns."""

CLASSIFICATION = {  # dataset: {column: accuracy %}
    "circles": {"LogReg": 48.58, "DT": 77.42, "RBF-SVM": 83.08, "XGB": 81.42, "LIFT/GPT-J": 79.95, "LIFT/GPT-3": 81.17},
    "two_circles": {"LogReg": 49.83, "DT": 75.50, "RBF-SVM": 80.00, "XGB": 79.25, "LIFT/GPT-J": 75.92,
                    "LIFT/GPT-3": 81.42},
    "blobs": {"LogReg": 96.75, "DT": 96.08, "RBF-SVM": 96.75, "XGB": 96.17, "LIFT/GPT-J": 96.17, "LIFT/GPT-3": 96.67},
    "moons": {"LogReg": 88.58, "DT": 99.25, "RBF-SVM": 100.0, "XGB": 99.83, "LIFT/GPT-J": 99.58, "LIFT/GPT-3": 100.0},
    "nine_clusters": {"LogReg": 100.0, "DT": 100.0, "RBF-SVM": 100.0, "XGB": 100.0, "LIFT/GPT-J": 99.75,
                      "LIFT/GPT-3": 100.0},
    "iris": {"LogReg": 96.67, "DT": 97.77, "RBF-SVM": 100.0, "XGB": 100.0, "LIFT/GPT-J": 96.67, "LIFT/GPT-3": 97.0},
    "wine": {"LogReg": 100.0, "DT": 93.52, "RBF-SVM": 100.0, "XGB": 97.22, "LIFT/GPT-J": 93.52, "LIFT/GPT-3": 92.59},
    # scikit-learn's digits is the UCI optdigits 8×8 test part (1,797 of its 5,620 rows).
    "digits": {"LogReg": 96.53, "DT": 89.8, "RBF-SVM": 97.95, "XGB": 97.48, "LIFT/GPT-J": 98.22, "LIFT/GPT-3": 98.99},
    "breast_cancer": {},  # LIFT reports it only in its in-context-learning study
}

REGRESSION = {  # dataset: {column: RAE}
    "linear_1d": {"Poly3": .010, "KNN": .041, "MLP": .035, "GBT": .050, "RF": .045, "GP": .008,
                  "LIFT/GPT-3": .064, "LIFT/GPT-J": .081},
    "quadratic_1d": {"Poly3": .008, "KNN": .049, "MLP": .035, "GBT": .057, "RF": .054, "GP": .011,
                     "LIFT/GPT-3": .132, "LIFT/GPT-J": .111},
    "exponential_1d": {"Poly3": .038, "KNN": .052, "MLP": .020, "GBT": .048, "RF": .039, "GP": .013,
                       "LIFT/GPT-3": .093, "LIFT/GPT-J": .109},
    "cosine_1d": {"Poly3": 1.052, "KNN": .136, "MLP": .379, "GBT": .148, "RF": .354, "GP": .035,
                  "LIFT/GPT-3": .436, "LIFT/GPT-J": .385},
    "l1norm_1d": {"Poly3": .229, "KNN": .045, "MLP": .028, "GBT": .060, "RF": .061, "GP": .029,
                  "LIFT/GPT-3": .089, "LIFT/GPT-J": .100},
    "piecewise_1d": {"Poly3": .451, "KNN": .078, "MLP": .085, "GBT": .062, "RF": .067, "GP": .102,
                     "LIFT/GPT-3": .167, "LIFT/GPT-J": .146},
    "linear_2d": {"Poly3": .027, "KNN": .115, "MLP": .044, "GBT": .120, "RF": .123, "GP": .008,
                  "LIFT/GPT-3": .189, "LIFT/GPT-J": .121},
    "quadratic_2d": {"Poly3": .027, "KNN": .170, "MLP": .058, "GBT": .149, "RF": .246, "GP": .025,
                     "LIFT/GPT-3": .217, "LIFT/GPT-J": .283},
    "exponential_2d": {"Poly3": .040, "KNN": .133, "MLP": .068, "GBT": .094, "RF": .105, "GP": .040,
                       "LIFT/GPT-3": .199, "LIFT/GPT-J": .194},
    "cosine_2d": {"Poly3": 1.044, "KNN": .832, "MLP": 1.062, "GBT": .413, "RF": .796, "GP": .309,
                  "LIFT/GPT-3": .654, "LIFT/GPT-J": .822},
    "l1norm_2d": {"Poly3": .242, "KNN": .186, "MLP": .056, "GBT": .153, "RF": .285, "GP": .071,
                  "LIFT/GPT-3": .195, "LIFT/GPT-J": .245},
    "piecewise_2d": {"Poly3": .388, "KNN": .325, "MLP": .203, "GBT": .187, "RF": .382, "GP": .292,
                     "LIFT/GPT-3": .405, "LIFT/GPT-J": .401},
}
