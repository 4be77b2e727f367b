import pytest

from stackml import errors
from stackml._deps import require


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.ConfigError, ValueError),
        (errors.InputError, ValueError),
        (errors.IdentifierError, ValueError),
        (errors.TableExistsError, ValueError),
        (errors.TableNotFoundError, KeyError),
        (errors.ConnectionFailedError, ConnectionError),
        (errors.MissingDependencyError, ImportError),
        (errors.RegistryError, LookupError),
        (errors.FlowFailedError, RuntimeError),
        (errors.NotFittedError, AttributeError),
    ],
)
def test_every_error_is_a_stackml_error_and_its_builtin(cls: type, builtin: type) -> None:
    exc = cls("what went wrong", hint="how to fix it")
    assert isinstance(exc, errors.StackmlError) and isinstance(exc, builtin)
    assert str(exc) == "what went wrong how to fix it"  # KeyError would otherwise print a repr


def test_all_names_exported() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        assert callable(value)
        if isinstance(value, type):  # the rest are the helpers problems_error / raise_if_problems
            assert issubclass(value, errors.StackmlError)


def test_require_names_the_extra() -> None:
    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'stackml\[forecast\]'"):
        require("lightgbm.this_module_does_not_exist")
    assert require("json").dumps([1]) == "[1]"
