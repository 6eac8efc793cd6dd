"""Stage weights: what each variant starts from, resolved to a file in data/weights/ (or random
initialisation) and recorded with its SHA-256 in models/pretrained/<variant>.json.

Training depends on that record, so DVC reruns a variant when its starting weights change,
appear or disappear. ImageNet files reach data/weights/ by `facecls weights fetch`.
"""

from facecls.atomic import atomic_dir, write_json
from facecls.errors import fail_cleanly
from facecls.models.pretrained import START_DIR, resolve_start
from facecls.params import load_params
from facecls.training.config import variant_config


@fail_cleanly
def main() -> None:
    params = load_params()
    configs = [variant_config(params, name) for name in params["variants"]]
    with atomic_dir(START_DIR) as tmp:
        for c in configs:
            record = resolve_start(c["arch"], c["weights"], c["weights_fallback"])
            write_json(tmp / f"{c['variant']}.json", record)
            print(f"weights@{c['variant']}: {record['weights']}" + (f" ({record['file']})" if record["file"] else ""))


if __name__ == "__main__":
    main()
