#!/bin/sh
# CogRE keywords reward on the demo relation-extraction set: the mean reward of each response
# kind under the three keyword scores (weight 1 on top of accuracy 1/0).
#   bench/cogre/run.sh > bench/results/cogre-cpu.txt
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-cogre}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
go run ./bench/cogre/makeset >/dev/null
echo "# command: bench/cogre/run.sh ($(date -u +%F)); 60 examples × 4 response kinds, testdata/cogre/"
printf "%-36s %10s %10s %10s %10s\n" "response kind (60 each)" accuracy hit precision coverage
for mode in hit precision coverage; do
	$POLO verify --kind keywords --opt dict=testdata/cogre/keywords.json --opt score=$mode \
		< testdata/cogre/responses.jsonl > /tmp/cogre-$mode.jsonl
done
paste -d' ' /tmp/cogre-hit.jsonl /tmp/cogre-precision.jsonl /tmp/cogre-coverage.jsonl | awk '
	BEGIN { split("right relation, right keywords|right relation, generic keywords|wrong relation, its keywords|right relation, no structure", kind, "|") }
	{
		k = (NR - 1) % 4 + 1
		n = split($0, f, "\"value\":")
		for (j = 2; j <= 4; j++) { split(f[j], v, ","); val[j-1] = v[1] + 0 }
		acc = ($0 ~ /^\{"correct":true/) ? 1 : 0
		A[k] += acc; H[k] += val[1] - acc; P[k] += val[2] - acc; C[k] += val[3] - acc; N[k]++
	}
	END { for (k = 1; k <= 4; k++) printf "%-36s %10.3f %10.3f %10.3f %10.3f\n", kind[k], A[k]/N[k], H[k]/N[k], P[k]/N[k], C[k]/N[k] }'
