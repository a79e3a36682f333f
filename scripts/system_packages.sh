#!/usr/bin/env bash
# The Debian packages the tests use as real tools, installed when missing and this runs as
# root with apt-get (as CI does); otherwise a warning says what to install.
#   pdflatex (texlive, booktabs, lmodern) and pdftotext (poppler-utils): the LaTeX tables
#     are compiled and read back (tests/test_fail_closed.py); they fail without them.
#   chromium and chromium-driver: the HTML report's browser tests, skipped without them
#     (failed under CI=true).
set -u
missing=()
command -v pdflatex >/dev/null 2>&1 || missing+=(texlive-latex-base texlive-latex-recommended lmodern)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the tests that use them" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        >/dev/null && exit 0
    echo "warning: apt-get could not install ${missing[*]}" >&2
else
    echo "warning: ${missing[*]} not installed, and apt-get cannot run as root here; install" \
         "them (sudo apt-get install ${missing[*]}): without pdflatex the LaTeX test fails," \
         "without chromium the browser tests are skipped" >&2
fi
exit 0
