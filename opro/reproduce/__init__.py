"""`opro reproduce`: the paper's tables and figures with any models, beside the published numbers.

`experiments` builds each experiment's grid (a sweep), `driver` runs and evaluates it, `tables` sets our
numbers beside the paper's (`paper`, read from the CSVs in `paper/`), `figures` draws them.
"""
