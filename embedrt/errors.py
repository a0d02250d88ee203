"""The one exception hierarchy of embedrt. Messages name the input, file or option and say what to do."""


class EmbedrtError(Exception):
    """Base class of every error embedrt raises on purpose."""


class ManifestError(EmbedrtError):
    """An export dir is missing, half-written, corrupt or of a version this runtime does not understand."""


class ExportError(EmbedrtError):
    """A checkpoint could not be turned into an export dir."""


class ParityError(ExportError):
    """An export missed its precision's parity threshold against the PyTorch source."""


class SelfCheckError(ManifestError):
    """An engine missed its precision's parity gate on this machine when it was loaded (embedrt.runtime.engines.self_check)."""


class ProviderError(EmbedrtError):
    """A requested execution provider is not available or was not activated."""


class InputError(EmbedrtError, ValueError):
    """An input to embed is not usable (wrong type, too long with truncate=False, unreadable)."""


class OutputError(EmbedrtError):
    """A model produced NaN or Inf for some input."""


class TritonError(EmbedrtError):
    """A Triton server could not be started, reached, or asked (unknown model, refused shape, failed load)."""


def require_count(name: str, value: object, what: str) -> None:
    """An option that counts something: an int >= 1 (not a bool), or an EmbedrtError naming it and what it counts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EmbedrtError(f"{name}={value!r}: give {what}, an int >= 1.")
