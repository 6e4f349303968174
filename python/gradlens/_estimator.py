"""scikit-learn's estimator conventions (get_params / set_params from the
constructor's keyword arguments), without depending on scikit-learn."""
import inspect


class Estimator:
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {', '.join(names)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self, attribute):
        if not hasattr(self, attribute):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")
