// The policy area's public surface: other areas import from here, not from the files behind it.
export { signalTypeSpec, type SignalTypeSpec, type SignalValueSpec } from './signal-type.spec.js';
export { signalValueProblem } from './signal-value.js';
export { cedarValueProblem } from './cedar-value.js';
export { generateCedarSchema, paramKind, CALENDAR_NAME, type CedarKind, type PolicyTask, type PolicySignalType, type SchemaInput } from './cedar-schema.js';
export { compilePolicySet, policySetVersion, taskReadsContext, PolicyValidationError, type CompiledPolicySet, type CompiledPolicy, type CompileOptions, type PolicySetInput } from './policy-set.js';
export type { PolicyFile } from './policy-source.js';
export { evaluate, evaluateApprover, NO_PERMIT_REASON, EVALUATION_FAILED_REASON } from './evaluate.js';
export {
  IDENTITY_CLAIMS,
  type ApproverAnswer,
  type BrokerSignals,
  type IdentityContext,
  type PolicyDecision,
  type PolicyOutcome,
  type PolicyRequest,
  type PolicyValue,
} from './policy-request.js';
export { runPolicyTests, loadPolicyTestFolder, neutralBroker, PolicyTestFileError, type PolicyTestResult } from './policy-test.js';
export { policyTestCase, type PolicyTestCase, type PolicyTestCaseInput } from './policy-test.spec.js';
