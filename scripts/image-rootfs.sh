#!/bin/sh
# Assembles the root filesystem of odorbot's image in OUT from a release binary: the
# binary, the shared libraries it links (as ldd resolves them, with the dynamic loader),
# the CA certificates, and passwd/group entries for the numeric user 10001. Nothing else:
# no shell, no package manager. Used by scripts/image.sh on the host and by the
# Containerfile's builder stage, so both build the same image.
#   scripts/image-rootfs.sh BINARY OUT
# POSIX sh, so it runs in any builder image.
set -eu
bin=$1
out=$2
certs=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}

[ -x "$bin" ] || { echo "image-rootfs: no executable at $bin" >&2; exit 1; }
[ -f "$certs" ] || { echo "image-rootfs: no CA bundle at $certs (install ca-certificates)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/etc/ssl/certs" "$out/tmp" "$out/var/lib/odorbot"
cp "$bin" "$out/odorbot"
# Symbols are much of the binary's size and nothing reads them at run time (a panic
# still prints its message and location); strip them when binutils is there.
if command -v strip >/dev/null; then strip --strip-all "$out/odorbot"; fi
cp "$certs" "$out/etc/ssl/certs/ca-certificates.crt"

# Every absolute path ldd prints: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`
# and the loader line `/lib64/ld-linux-x86-64.so.2 (0x…)`. A static binary prints none.
ldd "$bin" 2>/dev/null | tr ' \t' '\n\n' | grep '^/' | sort -u | while read -r lib; do
  mkdir -p "$out$(dirname "$lib")"
  # -L: the file itself, not the symlink the distribution keeps.
  cp -L "$lib" "$out$lib"
done

printf 'root:x:0:0:root:/nonexistent:/nonexistent\nodorbot:x:10001:10001:odorbot:/var/lib/odorbot:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\nodorbot:x:10001:\n' >"$out/etc/group"
# /tmp for SQLite's temporary files; /var/lib/odorbot is where the volume is mounted.
chmod 1777 "$out/tmp"
