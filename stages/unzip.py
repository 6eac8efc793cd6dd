"""Stage unzip: extract data.archive into data/raw/ (train_img, val_img, label_train.txt)."""

from facecls.data.archive import archive_setting, extract_archive
from facecls.errors import fail_cleanly
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    summary = extract_archive(archive_setting(load_params()), "data/raw")
    print(f"unzip: {summary['archive']} (root {summary['root']}): {summary['train_images']} train images "
          f"(class 0: {summary['class_0']}, class 1: {summary['class_1']}), {summary['val_images']} val images")


if __name__ == "__main__":
    main()
