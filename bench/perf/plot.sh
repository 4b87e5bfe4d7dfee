#!/bin/bash
# plot.sh CSV SVG - bar chart of % of peak per shape, from a CSV file of bench_perf:
# one panel per thread count, bars for brick, oneDNN (convs) and OpenBLAS (GEMMs).
# Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
csv=$1 svg=$2
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Columns (see report.c): 1 shape, 4 threads, 7 brick_pct_peak, 9 brick_check, 10 peer,
# 12 peer_pct_peak. A failed or untimed value becomes "-" (missing in gnuplot).
threads=$(awk -F, 'NR > 1 && !seen[$4]++ { printf "%s ", $4 }' "$csv")
for t in $threads; do
  awk -F, -v t="$t" 'NR > 1 && $4 == t {
      b = ($9 == "ok" && $7 != "nan") ? $7 : "-"
      p = ($12 != "nan" && $12 != "-nan") ? $12 : "-"
      printf "%s\t%s\t%s\t%s\n", $1, b, ($10 == "oneDNN") ? p : "-", ($10 == "OpenBLAS") ? p : "-"
    }' "$csv" > "$tmp/t$t.dat"
done
n=$(echo $threads | wc -w)
peak=$(awk -F, 'NR == 2 { print $17 }' "$csv")

{
  echo "set terminal svg size 1500,$((430 * n)) dynamic noenhanced font 'sans,11' background '#ffffff'"
  echo "set output '$svg'"
  cat <<'GP'
set datafile separator "\t"
set datafile missing "-"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by 40 right nomirror font ',9'
set bmargin 7
set ytics nomirror
set grid ytics
set yrange [0:*]
set ylabel "% of peak x threads (nominal FLOPs)"
set key top right
GP
  echo "set multiplot layout $n,1 title 'brick (default schedules) vs peers, % of the in-process FMA peak ($peak GFLOP/s per core)'"
  for t in $threads; do
    echo "set title '$t thread(s)'"
    # only the peers that have data, or gnuplot warns
    cmd="plot '$tmp/t$t.dat' using 2:xtic(1) title 'brick' lc rgb '#d62728'"
    if awk -F'\t' '$3 != "-" { f = 1 } END { exit !f }' "$tmp/t$t.dat"; then
      cmd="$cmd, '' using 3 title 'oneDNN 2.6 (format any)' lc rgb '#1f77b4'"
    fi
    if awk -F'\t' '$4 != "-" { f = 1 } END { exit !f }' "$tmp/t$t.dat"; then
      cmd="$cmd, '' using 4 title 'OpenBLAS sgemm' lc rgb '#2ca02c'"
    fi
    echo "$cmd"
  done
  echo "unset multiplot"
} > "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
