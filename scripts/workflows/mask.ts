// Masking of generated secrets in GitHub Actions logs lives in common/mask.ts (apply masks passwords
// too); re-exported here for the workflow side.
export { maskForActions, maskLines } from "../common/mask.ts";
