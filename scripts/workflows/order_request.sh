#!/usr/bin/env bash
# Workflow step "Check the request" of order.yml: the dispatch inputs arrive through env: and are
# checked here before anything uses them. Outputs: verb (create|cleanup|reset|purge), first, last,
# seats (N or N-M), id (the order id: the dispatched one, or one derived from this run so that a
# re-run records nothing twice).
set -euo pipefail
fail() {
  echo "::error title=Bad order request::$1"
  echo "Order refused: $1" >>"$GITHUB_STEP_SUMMARY"
  exit 1
}
case "${ACTION:-}" in
  CREATE | CLEANUP | RESET | PURGE) ;;
  *) fail "Action \"${ACTION:-}\" is not one of CREATE, CLEANUP, RESET, PURGE" ;;
esac
[[ "${ENVIRONMENT:-}" =~ ^[a-z][a-z0-9-]{0,31}$ ]] || fail "Environment \"${ENVIRONMENT:-}\" is not a valid environment name"
[[ "${WORKSHOP:-}" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || fail "Workshop \"${WORKSHOP:-}\" is not a valid workshop id"
if [[ "${SEAT:-}" =~ ^([0-9]{1,6})$ ]]; then
  first=$((10#${BASH_REMATCH[1]}))
  last=$first
elif [[ "${SEAT:-}" =~ ^([0-9]{1,6})-([0-9]{1,6})$ ]]; then
  first=$((10#${BASH_REMATCH[1]}))
  last=$((10#${BASH_REMATCH[2]}))
else
  fail "Seats \"${SEAT:-}\" is neither a seat number N nor a range N-M"
fi
[ "$first" -le "$last" ] || fail "Seat range $SEAT is reversed: the first seat must not be greater than the last"
[ $((last - first)) -lt 200 ] || fail "Seat range $SEAT has $((last - first + 1)) seats; at most 200 per order run"
[ "$ACTION" = RESET ] || [ "$first" = "$last" ] || fail "A seat range is only allowed for RESET (got $ACTION $SEAT)"
if [ -n "${ORDER_ID:-}" ]; then
  [[ "$ORDER_ID" =~ ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$ ]] || fail "Order id \"$ORDER_ID\" has characters outside [A-Za-z0-9._:@-]"
  id="$ORDER_ID"
else
  # Started from the Actions tab: a reason is required, and the id comes from the run.
  [ -n "${REASON:-}" ] || fail "A reason is required when the order is started from the Actions tab"
  id="dispatch-${GITHUB_REPOSITORY//\//-}-${GITHUB_RUN_ID:?}"
fi
[ -z "${BACKEND:-}" ] || [[ "$BACKEND" =~ ^[a-z][a-z0-9-]{0,31}$ ]] || fail "Backend \"$BACKEND\" is not a valid backend name"
[ -z "${MODE:-}" ] || [ "$MODE" = WKSHP ] || [ "$MODE" = CHLG ] || fail "Mode \"$MODE\" is neither WKSHP nor CHLG"
verb=$(printf '%s' "$ACTION" | tr 'A-Z' 'a-z')
{
  echo "verb=$verb"
  echo "first=$first"
  echo "last=$last"
  if [ "$first" = "$last" ]; then echo "seats=$first"; else echo "seats=$first-$last"; fi
  echo "id=$id"
} >>"$GITHUB_OUTPUT"
{
  echo "### Order: $ACTION $WORKSHOP seats $first-$last on $ENVIRONMENT"
  echo
  echo "Requested by ${GITHUB_ACTOR:-unknown} (order $id). Reason: ${REASON:-(none given)}"
} >>"$GITHUB_STEP_SUMMARY"
echo "Order accepted: $ACTION $WORKSHOP seats $first-$last on $ENVIRONMENT"
