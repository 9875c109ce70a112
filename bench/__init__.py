"""zsched benchmarks: ``make bench`` (or ``zsched bench``) runs each scenario beside a raw-Redis baseline.

One module per scenario family: s1_schedule, s2_lateness, s3_end_to_end, s4_claim, s5_memory, s6_growth;
runner prints the table and writes ``bench/results/latest.json``.
"""
