#!/bin/bash
# mdtable.sh CSV - the results of a bench_perf CSV file as a Markdown table, one line per
# shape, thread counts side by side (for README.md).
set -euo pipefail
awk -F, '
  NR == 1 { next }
  {
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1; desc[$1] = $3; peer[$1] = $10 }
    if (!($4 in tseen)) { tseen[$4] = 1; thr[++nt] = $4 }
    k = $1 SUBSEP $4
    b[k] = ($9 == "ok") ? sprintf("%.1f (%.0f%%)", $6, $7) : $9
    p[k] = ($11 ~ /nan/) ? "-" : sprintf("%.1f (%.0f%%)", $11, $12)
    r[k] = ($14 ~ /nan/) ? "-" : sprintf("%.2f", $14)
    if ($14 !~ /nan/ && $14 < 1) r[k] = "**" r[k] "**"
  }
  END {
    printf "| shape | layer | peer |"
    for (t = 1; t <= nt; t++) printf " brick %sT | peer %sT | ratio %sT |", thr[t], thr[t], thr[t]
    printf "\n|---|---|---|"
    for (t = 1; t <= nt; t++) printf "---:|---:|---:|"
    printf "\n"
    for (i = 1; i <= n; i++) {
      s = order[i]; d = desc[s]; gsub(/"/, "", d)
      printf "| %s | %s | %s |", s, d, peer[s]
      for (t = 1; t <= nt; t++) { k = s SUBSEP thr[t]; printf " %s | %s | %s |", b[k], p[k], r[k] }
      printf "\n"
    }
  }' "$1"
