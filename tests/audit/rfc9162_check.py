#!/usr/bin/env python3
# aetherbus - Apache-2.0
"""rfc9162_check: checks aetherbus-audit proofs with nothing of aetherbus.

An independent verifier (stdlib hashlib for the Merkle tree, Ed25519 from
python3-cryptography) of what the audit log hands a third party:

  inclusion --vkey VKEY --origin ORIGIN (--entry-text TEXT | --leaf-hash HEX)
      reads a c2sp.org/tlog-proof@v1 on stdin: checks the signed checkpoint
      with the verifier key (C2SP signed-note, sumdb/note key format), then
      that the inclusion path leads from the entry's leaf hash to its root.

  consistency --vkey VKEY --origin ORIGIN --old FILE --new FILE --proof FILE
      checks both signed checkpoints, then that the proof (one hash a line,
      hex or base64) shows the new tree extends the old one.

The inclusion path is checked by the inner/border decomposition of the
path, not by the RFC's loop the C code uses, so the two disagree if either
is wrong. Exit status: 0 verified, 1 refused (reason on stderr), 2 usage.
"""

import argparse
import base64
import binascii
import hashlib
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import \
        Ed25519PublicKey
except ImportError:
    sys.stderr.write("rfc9162_check: needs python3-cryptography "
                     "(scripts/deps.sh installs it)\n")
    sys.exit(2)

EM_DASH = "\u2014 "
MAX_SIGS = 100


class Refused(Exception):
    pass


def b64(s):
    """Strict standard base64: one text per value."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("not base64: %r" % s)
    if base64.b64encode(raw).decode() != s:
        raise Refused("not canonical base64: %r" % s)
    return raw


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


# Merkle proofs, RFC 9162 section 2.1

def root_from_inclusion(index, size, leaf, path):
    if index >= size:
        raise Refused("index %d is not below size %d" % (index, size))
    # Levels where the leaf's and the last leaf's paths still differ have a
    # sibling on either side; above the fork, only left siblings remain.
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(path) != inner + border:
        raise Refused("inclusion path has %d hashes, want %d"
                      % (len(path), inner + border))
    h = leaf
    for i, p in enumerate(path[:inner]):
        h = node_hash(p, h) if (index >> i) & 1 else node_hash(h, p)
    for p in path[inner:]:
        h = node_hash(p, h)
    return h


def verify_consistency(size1, size2, root1, root2, path):
    if size1 == 0:
        raise Refused("consistency from the empty tree")
    if size1 > size2:
        raise Refused("old size %d over new size %d" % (size1, size2))
    if size1 == size2:
        if path:
            raise Refused("equal sizes need an empty proof")
        if root1 != root2:
            raise Refused("equal sizes, different roots")
        return
    if not path:
        raise Refused("empty consistency proof")
    if size1 & (size1 - 1) == 0:
        path = [root1] + path
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Refused("consistency proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Refused("consistency proof too short")
    if fr != root1:
        raise Refused("consistency proof misses the old root")
    if sr != root2:
        raise Refused("consistency proof misses the new root")


# Signed notes (c2sp.org/signed-note, golang.org/x/mod/sumdb/note)

def valid_name(name):
    return (name != "" and "+" not in name
            and not any(c.isspace() or ord(c) < 0x20 for c in name))


def key_id(name, key):
    return hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]


def parse_vkey(vkey):
    parts = vkey.split("+", 2)
    if len(parts) != 3 or not valid_name(parts[0]) or len(parts[1]) != 8:
        raise Refused("verifier key is not <name>+<id>+<key>")
    name, hexid, key = parts[0], parts[1], b64(parts[2])
    try:
        kid = bytes.fromhex(hexid)
    except ValueError:
        raise Refused("verifier key id is not hex")
    if len(key) != 33 or key[0] != 1:
        raise Refused("verifier key is not an Ed25519 key")
    if key_id(name, key) != kid:
        raise Refused("verifier key id does not match its key")
    return name, kid, Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(msg, vkey):
    """The text of signed note msg (bytes) if vkey signed it."""
    name, kid, pub = parse_vkey(vkey)
    try:
        s = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("note is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        raise Refused("note has control characters")
    split = s.rfind("\n\n")
    if split < 0:
        raise Refused("note has no signature block")
    text, sigs = s[:split + 1], s[split + 2:]
    if not sigs.endswith("\n"):
        raise Refused("note signature block is empty or unfinished")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGS:
        raise Refused("note has over %d signatures" % MAX_SIGS)
    verified = False
    for line in lines:
        if not line.startswith(EM_DASH):
            raise Refused("signature line without an em dash: %r" % line)
        sname, _, sig64 = line[len(EM_DASH):].partition(" ")
        sig = b64(sig64) if sig64 else b""
        if not valid_name(sname) or len(sig) < 5:
            raise Refused("malformed signature line: %r" % line)
        if sname != name or sig[:4] != kid or verified:
            continue
        try:
            pub.verify(sig[4:], text.encode())
        except InvalidSignature:
            raise Refused("invalid signature by %s" % vkey)
        verified = True
    if not verified:
        raise Refused("no signature by %s" % vkey)
    return text


def parse_checkpoint(text, origin):
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) < 4 or "" in lines[:-1]:
        raise Refused("checkpoint is not 3+ non-empty lines")
    if lines[0] != origin:
        raise Refused("checkpoint of %r, not %r" % (lines[0], origin))
    size = lines[1]
    if not size.isdigit() or not size.isascii() or \
            (size != "0" and size.startswith("0")):
        raise Refused("checkpoint size %r" % size)
    root = b64(lines[2])
    if len(root) != 32:
        raise Refused("checkpoint root is not a SHA-256 hash")
    return int(size), root


def read_checkpoint(msg, vkey, origin):
    return parse_checkpoint(open_note(msg, vkey), origin)


def parse_tlog_proof(data):
    """(index, path, signed checkpoint bytes) of a c2sp.org/tlog-proof@v1."""
    head, sep, note = data.partition(b"\n\n")
    if not sep:
        raise Refused("tlog-proof has no checkpoint")
    lines = head.decode("ascii", "replace").split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise Refused("not a c2sp.org/tlog-proof@v1")
    lines = lines[1:]
    if lines and lines[0].startswith("extra "):
        lines = lines[1:]
    if not lines or not lines[0].startswith("index "):
        raise Refused("tlog-proof has no index line")
    index = lines[0][6:]
    if not index.isdigit() or (index != "0" and index.startswith("0")):
        raise Refused("tlog-proof index %r" % index)
    path = [b64(h) for h in lines[1:]]
    if any(len(h) != 32 for h in path):
        raise Refused("tlog-proof path has a hash not of 32 bytes")
    return int(index), path, note


def read_hashes(path):
    out = []
    with open(path) as f:
        for line in f.read().splitlines():
            out.append(bytes.fromhex(line) if len(line) == 64 else b64(line))
    if any(len(h) != 32 for h in out):
        raise Refused("proof has a hash not of 32 bytes")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    inc = sub.add_parser("inclusion")
    con = sub.add_parser("consistency")
    for p in (inc, con):
        p.add_argument("--vkey", required=True)
        p.add_argument("--origin", required=True)
    what = inc.add_mutually_exclusive_group(required=True)
    what.add_argument("--entry-text")
    what.add_argument("--leaf-hash")
    con.add_argument("--old", required=True)
    con.add_argument("--new", required=True)
    con.add_argument("--proof", required=True)
    args = ap.parse_args()

    try:
        if args.cmd == "inclusion":
            index, path, note = parse_tlog_proof(sys.stdin.buffer.read())
            size, root = read_checkpoint(note, args.vkey, args.origin)
            if args.entry_text is not None:
                leaf = leaf_hash(args.entry_text.encode())
            else:
                leaf = bytes.fromhex(args.leaf_hash)
            if root_from_inclusion(index, size, leaf, path) != root:
                raise Refused("inclusion path leads to another root")
            print("OK: entry %d is in %s at size %d" % (index, args.origin,
                                                         size))
        else:
            with open(args.old, "rb") as f:
                size1, root1 = read_checkpoint(f.read(), args.vkey,
                                               args.origin)
            with open(args.new, "rb") as f:
                size2, root2 = read_checkpoint(f.read(), args.vkey,
                                               args.origin)
            verify_consistency(size1, size2, root1, root2,
                               read_hashes(args.proof))
            print("OK: %s at size %d extends size %d" % (args.origin, size2,
                                                          size1))
    except Refused as e:
        sys.stderr.write("rfc9162_check: REFUSED: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
