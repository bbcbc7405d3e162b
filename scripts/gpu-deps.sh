#!/usr/bin/env bash
# Prepares .gpu-deps/ (ignored by git): what the GPU machine lacks and cannot
# download (it has PyTorch with LibTorch, nvcc, cmake and ninja, but no package
# registry). Taken from this machine's Debian packages, in /usr's layout so
# their CMake package files stay relocatable:
#   usr/include/      nlohmann-json, CLI11, toml++, SQLite, SentencePiece and libpq headers
#   usr/lib/...       libsqlite3, libsentencepiece(_train), libtomlplusplus and libpq shared
#                     libraries, with what libpq loads (its TLS, Kerberos and LDAP libraries;
#                     glibc's own libraries excepted)
#   usr/share/cmake/, usr/lib/<arch>/cmake/   CMake package files
#   src/googletest/   GoogleTest sources (built with the project: FLASHNAS_GTEST_SOURCE)
#   MANIFEST          the Debian package versions copied
# The device tool carries it (carry: [".gpu-deps"]); scripts/gpu-build.sh uses it.
# Safe to rerun: the folder is rebuilt in a temporary place and swapped in.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$FLASHNAS_ROOT/scripts/setup.sh" >/dev/null
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
dest="$FLASHNAS_ROOT/.gpu-deps"
tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/include" "$tmp/usr/lib/$arch/cmake" "$tmp/usr/share/cmake" "$tmp/src"
for d in nlohmann CLI toml++; do cp -a "/usr/include/$d" "$tmp/usr/include/"; done
for h in sqlite3.h sqlite3ext.h sentencepiece_processor.h sentencepiece_trainer.h; do
  cp -a "/usr/include/$h" "$tmp/usr/include/"
done
for l in libsqlite3.so libsentencepiece.so libsentencepiece_train.so libtomlplusplus.so; do
  cp -a /usr/lib/"$arch"/"$l"* "$tmp/usr/lib/$arch/"
done
cp -a /usr/include/postgresql "$tmp/usr/include/"
cp -a /usr/lib/"$arch"/libpq.so* "$tmp/usr/lib/$arch/"
ldd /usr/lib/"$arch"/libpq.so.5 | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
    *) cp -L "$lib" "$tmp/usr/lib/$arch/" ;;
  esac
done
cp -a /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$tmp/usr/share/cmake/"
cp -a "/usr/lib/$arch/cmake/tomlplusplus" "$tmp/usr/lib/$arch/cmake/"
cp -a /usr/src/googletest "$tmp/src/googletest"
dpkg-query -W nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libsqlite3-dev libsqlite3-0 \
  libsentencepiece-dev libsentencepiece0 googletest libpq-dev libpq5 >"$tmp/MANIFEST"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log ".gpu-deps ready: $(du -sh "$dest" | cut -f1) ($(wc -l <"$dest/MANIFEST") packages, see .gpu-deps/MANIFEST)"
