#!/bin/sh
# aetherbus - Apache-2.0
#
# The independent cross-check of the audit log's proofs: the real
# `aetherbus-audit keygen` makes a key, audit_proofgen (our C) signs
# checkpoints and proofs with it, rfc9162_check.py (hashlib and
# python3-cryptography, nothing of ours) must accept each of them and
# refuse each tampered one.
#
# usage: rfc9162_check.sh AUDIT_BIN PROOFGEN_BIN PYTHON3 SCRIPT
set -eu

audit=$1 proofgen=$2 py=$3 script=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/ab-rfc9162.XXXXXX")
trap 'rm -rf "$dir"' EXIT
origin=test.aetherbus.example/audit
fails=0

"$py" -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' || {
        echo "rfc9162_check: $py has no cryptography module;" \
             "scripts/deps.sh installs python3-cryptography" >&2
        exit 1
}

vkey=$("$audit" keygen --name "$origin" --out "$dir/key")
vkey2=$("$audit" keygen --name "$origin" --out "$dir/key2")

ok() {
        if ! "$py" "$script" "$@" >/dev/null; then
                echo "FAIL: refused a good proof: $*" >&2
                fails=$((fails + 1))
        fi
}

# refused WHY ARGS...: the script must refuse, saying WHY.
refused() {
        why=$1
        shift
        if "$py" "$script" "$@" >/dev/null 2>"$dir/err"; then
                echo "FAIL: accepted a bad proof: $*" >&2
                fails=$((fails + 1))
        elif ! grep -q "REFUSED: .*$why" "$dir/err"; then
                echo "FAIL: refused for another reason than '$why':" \
                     "$(cat "$dir/err")" >&2
                fails=$((fails + 1))
        fi
}

# First character of line $1 changed (A <-> B, else to A): a tampered hash
# that is still canonical base64.
tamper() {
        sed "$1s/^A/#/;$1s/^B/A/;$1s/^#/B/;t;$1s/^./A/"
}

for si in "1 0" "2 1" "3 2" "7 3" "8 7" "70 0" "70 45" "70 69" "1000 517"; do
        set -- $si
        size=$1 index=$2
        p="$dir/p.$size.$index"
        "$proofgen" inclusion "$dir/key" "$origin" "$size" "$index" >"$p"
        inc="inclusion --vkey $vkey --origin $origin"
        ok $inc --entry-text "audit-row-$index" <"$p"
        refused "another root" $inc --entry-text "audit-row-$((index + 1))" \
                <"$p"
        refused "no signature" inclusion --vkey "$vkey2" --origin "$origin" \
                --entry-text "audit-row-$index" <"$p"
        refused "checkpoint of" inclusion --vkey "$vkey" \
                --origin other.example/log \
                --entry-text "audit-row-$index" <"$p"
        # line 3 is the first path hash, or the blank line for size 1
        if [ "$size" -gt 1 ]; then
                tamper 3 <"$p" >"$p.bad"
                refused "another root" $inc \
                        --entry-text "audit-row-$index" <"$p.bad"
        fi
        # the checkpoint's size line: the signature no longer holds
        n=$(grep -n '^$' "$p" | head -1 | cut -d: -f1)
        sed "$((n + 2))s/\$/0/" <"$p" >"$p.bad"
        refused "invalid signature" $inc --entry-text "audit-row-$index" \
                <"$p.bad"
done

for ss in "1 1" "1 8" "3 8" "4 8" "6 7" "7 70" "64 1000" "999 1000"; do
        set -- $ss
        d="$dir/c.$1.$2"
        mkdir "$d"
        "$proofgen" consistency "$dir/key" "$origin" "$1" "$2" "$d"
        con="consistency --vkey $vkey --origin $origin"
        ok $con --old "$d/old.checkpoint" --new "$d/new.checkpoint" \
                --proof "$d/consistency.proof"
        if [ "$1" -ne "$2" ]; then
                refused "old size" $con --old "$d/new.checkpoint" \
                        --new "$d/old.checkpoint" --proof "$d/consistency.proof"
        fi
        if [ -s "$d/consistency.proof" ]; then
                sed '1s/^0/#/;1s/^1/0/;1s/^#/1/;t;1s/^./0/' \
                        <"$d/consistency.proof" >"$d/bad.proof"
                refused "misses the" $con --old "$d/old.checkpoint" \
                        --new "$d/new.checkpoint" --proof "$d/bad.proof"
        fi
done

if [ "$fails" -ne 0 ]; then
        echo "rfc9162_check: $fails failures" >&2
        exit 1
fi
echo "rfc9162_check: all proofs agree"
