"""The budgeted search: which (strategy, lr) to use on one (dataset, model), by successive
halving over the grid's arms (Jamieson & Talwalkar 2016; Li et al. 2020), at a fraction of the
grid's cost. ``rungs``: budgets and decisions; ``progress``: one arm's training to a rung;
``recommend``: the answer and its statistics. The Snakemake side is workflow/rules/search.smk.
"""
