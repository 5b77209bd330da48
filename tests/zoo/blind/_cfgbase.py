"""A directory destination with hand-declared parameters; `lenient` names the one the module parses by hand."""
import os

from harness import ConfigError, Parameter, ParameterType, ValidationRequired, validate_config

from ._dirbase import DirDestination


class ManualConfigDest(DirDestination):
    PARAMS = {
        "directory": Parameter("Directory holding one file per key.", None, ParameterType.string,
                               (ValidationRequired(),)),
        "sync": Parameter("Fsync files and the directory.", "false", ParameterType.bool),
    }
    lenient: str = ""

    class _Cfg:
        sync = False

    def parameters(self):
        return dict(self.PARAMS)

    def parse_lenient(self, value):
        raise NotImplementedError

    def configure(self, config):
        strict = {k: v for k, v in self.PARAMS.items() if k != self.lenient}
        given = {k: v for k, v in config.items() if k != self.lenient}
        values = validate_config(given, strict)  # ConfigError naming unknown/missing/malformed keys
        cfg = self._Cfg()
        cfg.sync = values.get("sync", "false") in ("1", "t", "T", "true", "TRUE", "True")
        raw = config.get(self.lenient, "").strip() or self.PARAMS[self.lenient].default
        try:
            setattr(cfg, self.lenient.replace(".", "_"), self.parse_lenient(raw))
        except (ValueError, TypeError, OverflowError) as err:
            raise ConfigError(f"invalid config: {self.lenient}: {err}", keys=[self.lenient]) from None
        self.cfg = cfg
        self.dir = os.path.abspath(values["directory"])
