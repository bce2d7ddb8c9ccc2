"""The README's usage example must run as written."""

import re
from pathlib import Path


def test_readme_usage_example_runs(tmp_path, capsys):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Usage", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code.replace("/tmp/rnn-lm", str(tmp_path / "rnn-lm")), "README.md", "exec"), {})
    assert "torch.Size([2, 12])" in capsys.readouterr().out


def test_readme_core_example_runs():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Usage", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["outputs"].shape == (4, 20, 32) and namespace["output"].shape == (4, 32)
    assert namespace["cache"].get_seq_length() == 21


def test_readme_seq2seq_example_runs(tmp_path, capsys):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Sequence to sequence", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code.replace("/tmp/rnn-seq2seq", str(tmp_path / "s2s")), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "torch.Size([2, 7])" in out and "[{'generated_text': " in out


def test_readme_time_series_example_runs(tmp_path, capsys):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Time series", 1)[1]
    section = section.split("\n## ", 1)[0]
    # the forecaster, then few labels on GunPoint
    for code in re.findall(r"```python\n(.*?)```", section, re.S):
        for name in ("rnn-forecaster", "rnn-ae", "rnn-clf"):
            code = code.replace(f"/tmp/{name}", str(tmp_path / name))
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "torch.Size([4, 50, 12])" in out and "torch.Size([3, 4, 12])" in out and "torch.Size([4])" in out
    assert re.search(r"test accuracy with 4 labels: [01]\.\d\d\n", out)
