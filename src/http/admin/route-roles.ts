import type { AdminRole } from './admin.table.js';

/** One admin endpoint: the least role that may call it, and the largest body it reads (none if absent). */
export interface AdminRoute {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Under /v1/admin. */
  path: string;
  role: AdminRole;
  body?: string;
  /** The action of the audit event the route records: set on every route that changes something. */
  audit?: string;
}

/** A route that changes something, and so names the audit event it records. */
export type AdminWriteRoute = AdminRoute & { audit: string };

/** Reasons and key names: a few short strings. */
const SMALL_BODY = '16kb';
/** One issuer, workload or task spec, which may carry an inline JWKS. */
const SPEC_BODY = '256kb';
/** A configuration document can be large (many workloads and policies). */
const CONFIG_BODY = '2mb';
/** A what-if request may carry a candidate policy set. */
const EVALUATE_BODY = '1mb';

/**
 * Every admin route and the role it needs: the one place that says who may do what. Routes are mounted
 * from these entries (see mountAdminRoute), and the role-matrix test iterates them.
 */
export const ADMIN_ROUTES = {
  applyConfig: { method: 'post', path: '/config', role: 'operator', body: CONFIG_BODY, audit: 'config.applied' },
  listConfigVersions: { method: 'get', path: '/config/versions', role: 'viewer' },
  restoreConfigVersion: { method: 'post', path: '/config/versions/:version/restore', role: 'operator', audit: 'config.restore' },

  listWorkloads: { method: 'get', path: '/workloads', role: 'viewer' },
  getWorkload: { method: 'get', path: '/workloads/:id', role: 'viewer' },
  putWorkload: { method: 'put', path: '/workloads/:id', role: 'operator', body: SPEC_BODY, audit: 'workload.put' },
  suspendWorkload: { method: 'post', path: '/workloads/:id/suspend', role: 'operator', body: SMALL_BODY, audit: 'workload.suspend' },
  retireWorkload: { method: 'post', path: '/workloads/:id/retire', role: 'operator', body: SMALL_BODY, audit: 'workload.retire' },
  activateWorkload: { method: 'post', path: '/workloads/:id/activate', role: 'operator', body: SMALL_BODY, audit: 'workload.activate' },

  listIssuers: { method: 'get', path: '/issuers', role: 'viewer' },
  getIssuer: { method: 'get', path: '/issuers/:id', role: 'viewer' },
  putIssuer: { method: 'put', path: '/issuers/:id', role: 'operator', body: SPEC_BODY, audit: 'issuer.put' },
  deleteIssuer: { method: 'delete', path: '/issuers/:id', role: 'operator', audit: 'issuer.delete' },

  listTasks: { method: 'get', path: '/tasks', role: 'viewer' },
  getTask: { method: 'get', path: '/tasks/:id', role: 'viewer' },
  putTask: { method: 'put', path: '/tasks/:id', role: 'operator', body: SPEC_BODY, audit: 'task.put' },
  deleteTask: { method: 'delete', path: '/tasks/:id', role: 'operator', audit: 'task.delete' },

  // Signal types, sources and policies live in the applied configuration document: each write is an
  // apply of the current configuration with that one entry changed.
  listSignalTypes: { method: 'get', path: '/signal-types', role: 'viewer' },
  getSignalType: { method: 'get', path: '/signal-types/:id', role: 'viewer' },
  putSignalType: { method: 'put', path: '/signal-types/:id', role: 'operator', body: SPEC_BODY, audit: 'signal_type.put' },
  deleteSignalType: { method: 'delete', path: '/signal-types/:id', role: 'operator', audit: 'signal_type.delete' },
  listSignalSources: { method: 'get', path: '/signal-sources', role: 'viewer' },
  getSignalSource: { method: 'get', path: '/signal-sources/:id', role: 'viewer' },
  putSignalSource: { method: 'put', path: '/signal-sources/:id', role: 'operator', body: SPEC_BODY, audit: 'signal_source.put' },
  deleteSignalSource: { method: 'delete', path: '/signal-sources/:id', role: 'operator', audit: 'signal_source.delete' },
  listPolicies: { method: 'get', path: '/policies', role: 'viewer' },
  getPolicy: { method: 'get', path: '/policies/:id', role: 'viewer' },
  putPolicy: { method: 'put', path: '/policies/:id', role: 'operator', body: SPEC_BODY, audit: 'policy.put' },
  deletePolicy: { method: 'delete', path: '/policies/:id', role: 'operator', audit: 'policy.delete' },

  listDecisions: { method: 'get', path: '/decisions', role: 'viewer' },
  getDecision: { method: 'get', path: '/decisions/:id', role: 'viewer' },
  // A what-if evaluation records nothing: a read, for anyone who may read decisions.
  evaluateDecision: { method: 'post', path: '/decisions\\:evaluate', role: 'viewer', body: EVALUATE_BODY },

  listGrants: { method: 'get', path: '/grants', role: 'viewer' },
  getGrant: { method: 'get', path: '/grants/:id', role: 'viewer' },
  grantTrail: { method: 'get', path: '/grants/:id/trail', role: 'viewer' },
  revokeGrant: { method: 'post', path: '/grants/:id/revoke', role: 'operator', body: SMALL_BODY, audit: 'grant.revoke' },
  // By workload, task or issuer; `{"all": true}`, the kill switch, needs admin (checked on the body).
  revokeGrants: { method: 'post', path: '/revocations', role: 'operator', body: SMALL_BODY, audit: 'grants.revoke' },
  reevaluateGrants: { method: 'post', path: '/grants\\:reevaluate', role: 'operator', audit: 'grants.reevaluate' },

  verifyAudit: { method: 'get', path: '/audit/verify', role: 'viewer' },
  listAuditEvents: { method: 'get', path: '/audit/events', role: 'viewer' },
  exportAudit: { method: 'get', path: '/audit/export', role: 'viewer' },
  // Retention: the purge records itself on the chain (one audit.purged event per call).
  purgeAudit: { method: 'post', path: '/audit/purge', role: 'admin', body: SMALL_BODY, audit: 'audit.purged' },

  listApprovals: { method: 'get', path: '/approvals', role: 'viewer' },
  getApproval: { method: 'get', path: '/approvals/:id', role: 'viewer' },
  // Deciding a step-up is what the approver role exists for.
  approveApproval: { method: 'post', path: '/approvals/:id/approve', role: 'approver', body: SMALL_BODY, audit: 'approval.voted' },
  denyApproval: { method: 'post', path: '/approvals/:id/deny', role: 'approver', body: SMALL_BODY, audit: 'approval.voted' },

  // Receivers see every step-up or grant end (a delegated approver decides some), resource servers read
  // every token they are sent, and a signing key ends every grant it signed: admin only.
  createApprovalWebhook: { method: 'post', path: '/approval-webhooks', role: 'admin', body: SMALL_BODY, audit: 'approval_webhook.create' },
  createWebhook: { method: 'post', path: '/webhooks', role: 'admin', body: SMALL_BODY, audit: 'webhook.create' },
  createResourceServer: { method: 'post', path: '/resource-servers', role: 'admin', body: SMALL_BODY, audit: 'resource_server.create' },
  revokeSigningKey: { method: 'post', path: '/signing-keys/:kid/revoke', role: 'admin', body: SMALL_BODY, audit: 'signing_key.revoke' },

  // Keys are admin-only, listing included: the list says who holds which power, which a viewer need not know.
  createKey: { method: 'post', path: '/keys', role: 'admin', body: SMALL_BODY, audit: 'admin_key.create' },
  listKeys: { method: 'get', path: '/keys', role: 'admin' },
  revokeKey: { method: 'post', path: '/keys/:id/revoke', role: 'admin', body: SMALL_BODY, audit: 'admin_key.revoke' },
} as const satisfies Record<string, AdminRoute>;

export type AdminRouteName = keyof typeof ADMIN_ROUTES;
