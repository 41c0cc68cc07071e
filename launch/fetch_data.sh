#!/usr/bin/env bash
# Fetches KWM's real data from Debian packages, as listed in launch/data_manifest.tsv:
# `apt-get download` the package into a cache, extract the one file, verify its sha256, write it
# to the data folder. Idempotent: a file already present with the right hash is left alone, so a
# complete data folder needs no network at all.
#
# usage: launch/fetch_data.sh [--dest DIR] [--cache DIR] [--set SET ...] [NAME ...]
#        (default: the sets series and text; a NAME may omit its folder and extension:
#        nile = nile.csv, mobydick = text/mobydick.txt)
#   --dest DIR   where the files go (default: data/ in the repository root)
#   --cache DIR  where downloaded .deb files are kept (default: $KWM_DEB_CACHE, else
#                ${XDG_CACHE_HOME:-$HOME/.cache}/kwm/debs); a PKG_*.deb already there is reused
#   --set SET    every entry of a set (repeatable): series (time series and golden results),
#                text (four novels and the fortunes literature file, ~3 MB from ~7 MB of .debs),
#                kjv (the King James Bible OSIS XML: a 40 MB .deb, so not in the default), all
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="$repo_root/launch/data_manifest.tsv"
dest="$repo_root/data"
cache="${KWM_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kwm/debs}"
names=()
sets=()

die() { echo "fetch_data.sh: error: $*" >&2; exit 1; }
log() { echo "fetch_data.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) [[ $# -ge 2 ]] || die "--dest needs a directory"; dest="$2"; shift 2 ;;
    --cache) [[ $# -ge 2 ]] || die "--cache needs a directory"; cache="$2"; shift 2 ;;
    --set) [[ $# -ge 2 ]] || die "--set needs a set name"; sets+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) names+=("$1"); shift ;;
  esac
done

[[ -r "$manifest" ]] || die "manifest $manifest not found"
for tool in sha256sum dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# Manifest rows (comments and blank lines skipped): name, package, path, sha256, set (a missing
# fifth column means series).
declare -A pkg_of path_of sha_of set_of
all_names=()
while IFS=$'\t' read -r name pkg path sha set || [[ -n "${name:-}" ]]; do
  [[ -z "${name// }" || "$name" == \#* ]] && continue
  [[ -n "$pkg" && -n "$path" && ${#sha} -eq 64 ]] || die "malformed manifest row for '$name'"
  pkg_of[$name]="$pkg"; path_of[$name]="$path"; sha_of[$name]="$sha"; set_of[$name]="${set:-series}"
  all_names+=("$name")
done < "$manifest"

# No names and no sets: the default sets. The KJV stays out of the default: its .deb is 40 MB and
# no test or small config needs it (docs/text-data.md).
if [[ ${#names[@]} -eq 0 && ${#sets[@]} -eq 0 ]]; then
  sets=(series text)
fi
for wanted in "${sets[@]}"; do
  found=0
  for entry in "${all_names[@]}"; do
    if [[ "$wanted" == all || "${set_of[$entry]}" == "$wanted" ]]; then
      names+=("$entry"); found=1
    fi
  done
  [[ $found -eq 1 ]] || die "set '$wanted' is not in $manifest; sets are: all $(printf '%s\n' "${set_of[@]}" | sort -u | tr '\n' ' ')"
done
# A name may leave out its extension ("nile" for nile.csv) when that is unambiguous.
resolved=()
for name in "${names[@]}"; do
  if [[ -z "${pkg_of[$name]:-}" ]]; then
    matches=()
    for entry in "${all_names[@]}"; do
      base="${entry##*/}"
      [[ "${entry%%.*}" == "$name" || "${base%%.*}" == "$name" ]] && matches+=("$entry")
    done
    [[ ${#matches[@]} -eq 1 ]] || die "'$name' is not in $manifest; entries are: ${all_names[*]}"
    name="${matches[0]}"
  fi
  # An entry named twice (by a set and by name) is fetched once.
  [[ " ${resolved[*]-} " == *" $name "* ]] || resolved+=("$name")
done
names=("${resolved[@]}")

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "'$*' needs root and sudo is not available"
  fi
}

# Prints the path of a cached .deb for package $1, downloading it when there is none.
deb_for() {
  local pkg="$1" deb
  deb="$(ls -1 "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$deb" ]]; then
    command -v apt-get >/dev/null || die "apt-get is required to download $pkg"
    mkdir -p "$cache"
    log "downloading $pkg into $cache"
    if ! (cd "$cache" && apt-get download "$pkg" >&2); then
      # Usually a fresh machine without package lists: refresh them once and retry.
      log "apt-get download $pkg failed; running apt-get update and retrying"
      as_root apt-get update >&2
      (cd "$cache" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
    fi
    deb="$(ls -1 "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)"
    [[ -n "$deb" ]] || die "apt-get download $pkg left no ${pkg}_*.deb in $cache"
  fi
  echo "$deb"
}

mkdir -p "$dest"
for name in "${names[@]}"; do
  target="$dest/$name"
  if sha_ok "$target" "${sha_of[$name]}"; then
    log "$name: present, sha256 ok"
    continue
  fi
  deb="$(deb_for "${pkg_of[$name]}")"
  work="$(mktemp -d "${TMPDIR:-/tmp}/kwm-fetch.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" "./${path_of[$name]}" ||
    die "$name: ${path_of[$name]} not found in $deb"
  got="$(sha256sum "$work/${path_of[$name]}" | cut -d' ' -f1)"
  if [[ "$got" != "${sha_of[$name]}" ]]; then
    die "$name: sha256 mismatch for ${path_of[$name]} from $(basename "$deb"): expected ${sha_of[$name]}, got $got (a different package version? the file was NOT written)"
  fi
  mkdir -p "$(dirname "$target")"
  install -m 0644 "$work/${path_of[$name]}" "$target.tmp"
  mv -f "$target.tmp" "$target"
  rm -rf "$work"
  trap - EXIT
  log "$name: written to $target (from $(basename "$deb"))"
done

# Derived series: scipy's ECG ships as a zipped .npy; the trainers read CSV.
if [[ -f "$dest/ecg.dat" && ( ! -f "$dest/ecg.csv" || "$dest/ecg.dat" -nt "$dest/ecg.csv" ) ]]; then
  /usr/bin/python3 "$repo_root/launch/convert_ecg.py" --src "$dest/ecg.dat" --dst "$dest/ecg.csv"
fi
