"""The served models: loaded from the MLflow registry by ``name@alias`` and swapped when the alias moves.

A swap loads the new version completely (and checks it predicts on its own input example) before it
replaces the old one in a single reference assignment. A request takes the model it will use once, at
its start, so requests in flight finish on the old version and none fails during the swap.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackml.config import Settings
from stackml.errors import RegistryError
from stackml.serving.jsonable import to_jsonable
from stackml.serving.options import DEFAULT_ALIAS, ModelSpec, servable_name
from stackml.serving.validation import Column, columns_from_signature, validate_records

if TYPE_CHECKING:
    from stackml.serving.online_features import OnlineFeatures

__all__ = ["ServedModel", "ModelCache", "ReloadResult", "champion_models"]

log = logging.getLogger(__name__)

# A model that predicts its example faster than this runs on the event loop: a thread hop would cost
# more than the prediction. Slower models run in the thread pool so the loop keeps answering.
INLINE_PREDICT_S = 0.005
_EXAMPLE_RECORDS = 3


@dataclass(frozen=True)
class ServedModel:
    """One loaded version of a registered model.

    Attributes:
        name: registered model name.
        alias: alias it is served under.
        version: the version the alias pointed to when it was loaded.
        model: the ``mlflow.pyfunc.PyFuncModel``.
        columns: input columns from the signature (None: no column signature, records pass as they are).
        input_schema: the signature's inputs as MLflow writes them (``[{"name", "type", "required"}]``).
        output_schema: the signature's outputs, likewise.
        example: a few records from the model's input example, for documentation.
        run_id: the training run.
        inline: predict on the event loop (fast models) rather than in a worker thread.
        direct: the model's own predict, for frames that already match the signature exactly (see
            :func:`direct_predict`); None when only the public ``model.predict`` is safe.
        loaded_at: when this version was loaded (seconds since the epoch).
        feature_service: the feature service whose online features are added to each record before the
            signature is checked (``--enrich``, else the version's ``stackml.feature_service`` tag).
    """

    name: str
    alias: str
    version: int
    model: Any
    columns: list[Column] | None
    input_schema: list[dict[str, Any]] | None
    output_schema: list[dict[str, Any]] | None
    example: list[dict[str, Any]] | None
    run_id: str | None
    inline: bool
    direct: Callable[[Any], Any] | None
    loaded_at: float
    feature_service: str | None = None


@dataclass(frozen=True)
class ReloadResult:
    """What re-resolving one alias did."""

    name: str
    alias: str
    previous_version: int
    version: int

    @property
    def changed(self) -> bool:
        return self.version != self.previous_version


def champion_models(settings: Settings | None = None) -> list[ModelSpec]:
    """Every registered model that has a ``champion`` alias, as specs to serve.

    Raises:
        RegistryError: when no registered model has one.
    """
    from stackml.tracking import configure

    client = configure(settings)
    specs, token, names = [], None, []
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        for model in page:
            names.append(model.name)
            if DEFAULT_ALIAS in (model.aliases or {}):
                specs.append(ModelSpec(model.name, DEFAULT_ALIAS))
        token = page.token
        if not token:
            break
    if not specs:
        raise RegistryError(
            f"No registered model has a '{DEFAULT_ALIAS}' alias to serve "
            f"(registered models: {', '.join(sorted(names)) or 'none'}).",
            hint="Promote a version first (a pipeline run does), or pass --models name@alias.",
        )
    return sorted(specs, key=lambda s: s.name)


class ModelCache:
    """The models a service serves, kept current with their aliases.

    A model that cannot be served (its alias is gone, its version does not load) is listed in
    ``unavailable`` with the reason, and each refresh tries it again.

    Args:
        specs: the models to serve.
        settings: where the registry is.
        strict: :meth:`load` fails when any model cannot be loaded (models named on the command line);
            otherwise it serves the others and reports the broken ones (every champion, by default).
        features: the feature services a model's records may be enriched from; a version that names a
            service they do not have, or whose signature does not take the service's columns, is not
            served. None: records reach every model as sent.

    Example:
        >>> cache = ModelCache([ModelSpec("demand")], settings)  # doctest: +SKIP
        >>> cache.load(); cache.get("demand").version  # doctest: +SKIP
        3
    """

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        settings: Settings | None = None,
        *,
        strict: bool = True,
        features: OnlineFeatures | None = None,
    ) -> None:
        from stackml.tracking import configure

        self.specs = {s.name: s for s in specs if servable_name(s.name)}
        self.settings = settings
        self.strict = strict
        self.features = features
        self._client = configure(settings)
        self._models: dict[str, ServedModel] = {}
        self._locks = {name: threading.Lock() for name in self.specs}
        self.unavailable: dict[str, str] = {
            s.name: f"the name {s.name!r} cannot be served (it travels in URL paths: letters, digits, "
            "'_', '.', '-'); register the model under such a name."
            for s in specs
            if not servable_name(s.name)
        }
        self.last_errors: dict[str, str] = {}
        self.reloads: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)

    def get(self, name: str) -> ServedModel | None:
        """The version of ``name`` being served now (None for a model this service does not serve now)."""
        return self._models.get(name)

    def models(self) -> list[ServedModel]:
        return [self._models[n] for n in self.names if n in self._models]

    def load(self) -> None:
        """Load every model.

        Raises:
            RegistryError: naming every model that could not be loaded (strict), or when none could be.
        """
        for name in self.unavailable:
            log.error("Not serving %r: %s", name, self.unavailable[name])
        for spec in self.specs.values():
            try:
                self._models[spec.name] = self._load(spec, self._resolve(spec))
            except Exception as exc:  # a broken model must not stop the others (and is reported)
                self.unavailable[spec.name] = _reason(exc)
                log.error("Not serving %s: %s", spec, self.unavailable[spec.name])
        if self.unavailable and (self.strict or not self._models):
            raise RegistryError(
                "Cannot serve: " + " ".join(self.unavailable.values()),
                hint="Run `stackml models` to see registered models and their aliases.",
            )

    def reload(self, name: str) -> ReloadResult:
        """Re-resolve the alias of ``name`` and swap in the version it points to, if it moved.

        A deleted alias (or model) stops the model being served until the alias is set again.

        Raises:
            RegistryError: the alias no longer resolves, or the new version cannot be loaded (then the
                current version keeps being served).
        """
        spec = self.specs[name]
        with self._locks[name]:
            current = self._models.get(name)
            try:
                version = self._resolve(spec)
            except RegistryError as exc:
                if self._models.pop(name, None) is not None:
                    log.warning("Stopped serving %s v%d: %s", spec, current.version, exc.message)
                self.unavailable[name] = exc.message
                raise
            if current is not None and version == current.version:
                return ReloadResult(name, spec.alias, current.version, version)
            try:
                fresh = self._load(spec, version)
            except Exception as exc:
                if current is None:
                    self.unavailable[name] = _reason(exc)
                raise
            self._models[name] = fresh  # one reference assignment: requests see the old or the new model
            self.unavailable.pop(name, None)
            self.reloads[name] += 1
        previous = current.version if current is not None else 0
        log.info(
            "Serving %s v%d (was %s).",
            spec,
            version,
            f"v{previous}" if current is not None else "not served",
            extra={
                "event": "swap",
                "model": name,
                "alias": spec.alias,
                "version": version,
                "previous": previous,
            },
        )
        return ReloadResult(name, spec.alias, previous, version)

    def refresh(self) -> list[ReloadResult]:
        """Re-resolve every alias; failures are kept in ``last_errors`` and logged, never raised."""
        results = []
        for name in self.names:
            try:
                results.append(self.reload(name))
                self.last_errors.pop(name, None)
            except Exception as exc:  # a background refresh must survive a registry outage or a bad version
                self.last_errors[name] = _reason(exc)
                log.warning("Could not re-resolve %s: %s", self.specs[name], self.last_errors[name])
        return results

    def start(self, interval_s: float) -> None:
        """Re-resolve aliases every ``interval_s`` seconds in a background thread (0: never)."""
        if interval_s <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="stackml-model-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def probe(self) -> tuple[bool, str]:
        """Query the registry for real: each served model's current alias target."""
        versions = []
        for spec in self.specs.values():
            versions.append(f"{spec}=v{self._resolve(spec)}")
        return True, ", ".join(versions)

    # -- internals ----------------------------------------------------------------------------------------
    def _resolve(self, spec: ModelSpec) -> int:
        from stackml.tracking._setup import mlflow_module, translate_mlflow_error

        mlflow = mlflow_module()
        try:
            return int(self._client.get_model_version_by_alias(spec.name, spec.alias).version)
        except mlflow.exceptions.MlflowException as exc:
            error = translate_mlflow_error(exc, f"Model '{spec}'")
            if isinstance(error, RegistryError):
                raise RegistryError(
                    f"'{spec}' does not resolve to a registered version ({getattr(exc, 'message', exc)}).",
                    hint="Run `stackml models` to see registered models and their aliases.",
                ) from exc
            raise

    def _load(self, spec: ModelSpec, version: int) -> ServedModel:
        """Load one version completely and check it predicts on its input example before it is served."""
        from stackml.tracking import load_model

        try:
            model = load_model(f"models:/{spec.name}/{version}", settings=self.settings)
        # Deleted artifacts, a missing dependency, a corrupt pickle: any of them, named with the version.
        except Exception as exc:
            raise RegistryError(
                f"'{spec}' v{version} cannot be loaded ({_reason(exc)}).",
                hint="Register a working version and move the alias to it.",
            ) from exc
        meta = model.metadata
        inputs, outputs = meta.get_input_schema(), meta.get_output_schema()
        columns = columns_from_signature(inputs)
        feature_service = self._feature_service(spec, version, columns)
        example_frame = _example_frame(model)
        inline, example, direct = False, None, None
        if example_frame is not None:
            example = to_jsonable(example_frame.head(_EXAMPLE_RECORDS))
            fastest = float("inf")
            for _ in range(3):  # warms caches too, so the first real request is not the slow one
                started = time.perf_counter()
                try:
                    model.predict(example_frame.copy())
                except Exception as exc:  # any failure of the model's own code disqualifies the version
                    raise RegistryError(
                        f"'{spec}' v{version} fails to predict on its own input example "
                        f"({type(exc).__name__}: {exc}); not serving it.",
                        hint="Fix the model and register a new version.",
                    ) from exc
                fastest = min(fastest, time.perf_counter() - started)
            inline = fastest < INLINE_PREDICT_S
            if isinstance(example, list):
                direct = _checked_direct(model, columns, example, spec, version)
        return ServedModel(
            name=spec.name,
            alias=spec.alias,
            version=version,
            model=model,
            columns=columns,
            input_schema=inputs.to_dict() if inputs is not None else None,
            output_schema=outputs.to_dict() if outputs is not None else None,
            example=example if isinstance(example, list) else None,
            run_id=meta.run_id,
            inline=inline,
            direct=direct,
            loaded_at=time.time(),
            feature_service=feature_service,
        )

    def _feature_service(self, spec: ModelSpec, version: int, columns: list[Column] | None) -> str | None:
        """The version's feature service, checked against the definitions and the signature.

        A service's columns the signature does not take mean the model was trained on other features:
        serving it would fail every request, so the version is refused here, by name.
        """
        if self.features is None:
            return None
        tags = self._client.get_model_version(spec.name, str(version)).tags or {}
        service = self.features.service_of(spec.name, tags)
        if service is None:
            return None
        where = "--enrich" if spec.name in self.features.enrich else "its stackml.feature_service tag"
        unknown = self.features.unknown(service)
        if unknown is not None:
            raise RegistryError(
                f"'{spec}' v{version} takes feature service '{service}' ({where}), but {unknown}.",
                hint="Serve with the feature repo the model was trained on (--features-repo DIR), or "
                "correct the service named by --enrich MODEL=SERVICE or the version's tag.",
            )
        no_store = self.features.store_problem()
        if no_store is not None:
            raise RegistryError(
                f"'{spec}' v{version} takes feature service '{service}' ({where}), but there is no online "
                f"store to read it from: {no_store}",
                hint="Pass --online postgresql://user@host:5432/db, or set STACKML_POSTGRES_URL.",
            )
        if columns is not None:
            taken = {c.name for c in columns}
            _, added = self.features.columns(service)
            untaken = [c for c in added if c not in taken]
            if untaken:
                raise RegistryError(
                    f"'{spec}' v{version} takes feature service '{service}' ({where}), but its signature "
                    f"does not take the service's column(s) {untaken}; it takes: "
                    f"{', '.join(c.name for c in columns)}.",
                    hint="Serve it with the feature service it was trained on "
                    "(FeatureStore.get_training_set(entities, SERVICE) gives its columns).",
                )
        return service


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RegistryError):
        return exc.message
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _example_frame(model: Any) -> Any:
    import pandas as pd

    try:
        example = model.input_example
    except Exception:  # an unreadable example only costs us the warm-up and the documented example
        return None
    return example if isinstance(example, pd.DataFrame) and not example.empty else None


def direct_predict(model: Any, columns: Sequence[Column] | None) -> Callable[[Any], Any] | None:
    """The model implementation's own ``predict``, skipping MLflow's second enforcement of the signature.

    ``PyFuncModel.predict`` re-checks and re-casts the frame against the signature and inspects the
    predict function on every call, about a third of a small request's time. The service has already
    checked the records against the same signature and built a frame with exactly its dtypes, so for
    such frames that work changes nothing. Only plain column signatures qualify: none inferred from type
    hints, no params schema, the standard ``predict`` method. ``_model_impl`` is what MLflow documents as
    its stable developer API for the wrapped implementation.

    Returns:
        A callable taking the frame, or None when the public path must be used.
    """
    if columns is None:
        return None
    meta = model.metadata
    try:
        if meta._is_signature_from_type_hint() or meta._is_type_hint_from_example():
            return None
        impl = model._model_impl
    except AttributeError:  # another MLflow version: stay on the public path
        return None
    if meta.get_params_schema() is not None:
        return None
    if (meta.flavors.get("python_function") or {}).get("predict_fn", "predict") != "predict":
        return None
    fn = getattr(impl, "predict", None)
    if fn is None:
        return None
    params = inspect.signature(fn).parameters.get("params")
    if params is not None and params.kind != inspect.Parameter.VAR_KEYWORD:
        return lambda frame: fn(frame, params=None)
    return fn


def _checked_direct(
    model: Any, columns: list[Column] | None, example: list[dict[str, Any]], spec: ModelSpec, version: int
) -> Callable[[Any], Any] | None:
    """:func:`direct_predict`, kept only if it answers exactly like ``model.predict`` on the input example."""
    fn = direct_predict(model, columns)
    if fn is None:
        return None
    frame, problems, exact = validate_records(example, columns)
    if problems or not exact:
        return None
    try:
        same = to_jsonable(fn(frame.copy())) == to_jsonable(model.predict(frame.copy()))
    except Exception:  # any difference in behaviour means the public path only
        same = False
    if not same:
        log.info(
            "%s v%d: the direct predict path differs from MLflow's; using model.predict only.", spec, version
        )
    return fn if same else None
