#!/usr/bin/env bash
# Re-vendors the pages' front-end libraries from the npm registry, exactly as the
# committed package-lock.json pins them, into ../assets/vendor (embedded in the binary).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
mkdir -p ../assets/vendor
cp node_modules/jsqr/dist/jsQR.js ../assets/vendor/jsQR.js
cp node_modules/chart.js/dist/chart.umd.min.js ../assets/vendor/chart.umd.min.js
cp node_modules/jsqr/LICENSE ../assets/vendor/jsQR.LICENSE
cp node_modules/chart.js/LICENSE.md ../assets/vendor/chart.js.LICENSE.md
rm -rf node_modules
sha256sum ../assets/vendor/*.js
