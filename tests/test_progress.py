"""``medft.progress``: Snakemake's output as a few progress lines; errors whole."""

import io

from medft.progress import Progress

JOB = """
[Thu Dec  3 23:42:38 2026]
rule train:
    input: data/nodule/r32_c32/meta.json
    output: results/nodule/m/FT/lr0.001/seed{seed}/metrics.json
    jobid: {jobid}
    reason: Missing output files
    wildcards: dataset=nodule, model=m, strategy=FT, lr=0.001, seed={seed}
    threads: 1
Select jobs to execute...
Execute 1 jobs...
"""


def _run(lines: str, every_s: float = 0.0) -> str:
    out = io.StringIO()
    progress = Progress(out, every_s)
    for line in lines.splitlines(keepends=True):
        progress.feed(line)
    progress.finish()
    return out.getvalue()


def test_a_run_reads_as_a_few_lines_with_steps_and_what_runs():
    text = "".join(JOB.format(seed=s, jobid=s + 1) for s in range(3))
    text += "Finished jobid: 1 (Rule: train)\n1 of 3 steps (33%) done\n"
    text += "Finished jobid: 2 (Rule: train)\n2 of 3 steps (67%) done\n"
    text += "Finished jobid: 3 (Rule: train)\n3 of 3 steps (100%) done\n"
    shown = _run(text).splitlines()
    assert "running: train nodule m FT lr0.001 seed0" in shown[0]
    assert shown[-1].endswith("3/3 steps (100%)") and len(shown) == 4
    assert not any("Select jobs" in line or "Execute" in line for line in shown)
    # throttled: job starts within `every_s` of the last line print nothing more
    assert len(_run(text, every_s=3600).splitlines()) == 2


def test_an_error_passes_through_whole():
    text = JOB.format(seed=0, jobid=1) + (
        "RuleException:\nCalledProcessError in file workflow/rules/train.smk, line 29:\n"
        "Command 'python train.py' returned non-zero exit status 1.\n"
    )
    shown = _run(text)
    assert "CalledProcessError in file workflow/rules/train.smk, line 29:" in shown
    assert "returned non-zero exit status 1." in shown
