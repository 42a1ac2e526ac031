# The budgeted search (docs/search.md): successive halving over arms = (strategy, lr) of one
# (dataset, model). Each rung's decision is a checkpoint; its survivor list drives the next
# rung's jobs through the input functions below, so `snakemake -n` shows one rung at a time.
# Every arm trains in its grid cell's folder (seed 0) and resumes from its own last.pt.
localrules:
    search_decision,
    recommendation,


rule search_rung:
    """One arm, seed 0, trained on from its own checkpoint to the rung's epoch budget."""
    input:
        data=lambda w: grid.prepared(w.dataset, w.model),
        before=lambda w: grid.search_plan.rung_inputs(w),
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{strategy}}/lr{{lr}}/seed{{seed}}/rung{{rung}}.json",
    log:
        f"{LOGS}/search/{{dataset}}/{{model}}/{{strategy}}_lr{{lr}}_seed{{seed}}_rung{{rung}}.log",
    conda:
        "../../envs/medft.yaml"
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_job"],
        mem_mb=lambda w, attempt: grid.cost.mem_mb("train", w, attempt),
        runtime=lambda w: grid.cost.runtime_min("train", w),
    params:
        job=lambda w: grid.search_plan.rung_params(w),
        warm=config["warm_worker"],
    script:
        "../scripts/search_rung.py"


checkpoint search_decision:
    """Rank the arms of a rung and write who goes on, with the scores that decided it."""
    input:
        lambda w: [
            grid.search_plan.rung_path(w.dataset, w.model, s, lr, w.rung)
            for s, lr in arms_at(w.dataset, w.model, int(w.rung))
        ],
    output:
        grid.search_plan.decision_path("{dataset}", "{model}", "{rung}"),
    log:
        f"{LOGS}/search/{{dataset}}/{{model}}/decision{{rung}}.log",
    conda:
        "../../envs/medft.yaml"
    params:
        eta=grid.search.eta,
    script:
        "../scripts/search_decision.py"


rule recommendation:
    """The finalists' every seed at the full protocol, and the answer with its statistics."""
    input:
        runs=lambda w: [
            f"{grid.run_dir(w.dataset, w.model, strategy, lr, seed)}/metrics.json"
            for strategy, lr in finalist_arms(w.dataset, w.model)
            for seed in config["seeds"]
        ],
        decisions=lambda w: decisions_of(w.dataset, w.model),
    output:
        md=report(
            grid.search_plan.recommendation_files("{dataset}", "{model}")["md"],
            caption=os.path.join(CAPTIONS, "recommendation.rst"),
            category="{dataset}",
            subcategory="Search",
        ),
        csv=report(
            grid.search_plan.recommendation_files("{dataset}", "{model}")["csv"],
            caption=os.path.join(CAPTIONS, "recommendation.rst"),
            category="{dataset}",
            subcategory="Search",
        ),
        png=report(
            grid.search_plan.recommendation_files("{dataset}", "{model}")["png"],
            caption=os.path.join(CAPTIONS, "search_curves.rst"),
            category="{dataset}",
            subcategory="Search",
        ),
    log:
        f"{LOGS}/search/{{dataset}}/{{model}}/recommendation.log",
    conda:
        "../../envs/medft.yaml"
    params:
        arm_runs=lambda w: grid.search_plan.runs(
            w.dataset, w.model, finalists_of(w.dataset, w.model)
        ),
        budgets=lambda w: grid.search_plan.budgets(w.model),
        select_on=config["select_lr_on"],
        costs=lambda w: grid.search_plan.costs(w.dataset, w.model),
        margin=config["equivalence_margin"],
    script:
        "../scripts/recommendation.py"
