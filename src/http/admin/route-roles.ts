import type { AdminRole } from './admin.table.js';

/** One admin endpoint: the least role that may call it, and the largest body it reads (none if absent). */
export interface AdminRoute {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Under /v1/admin. */
  path: string;
  role: AdminRole;
  body?: string;
}

/** Reasons and key names: a few short strings. */
const SMALL_BODY = '16kb';
/** One issuer, workload or task spec, which may carry an inline JWKS. */
const SPEC_BODY = '256kb';

/**
 * Every admin route and the role it needs: the one place that says who may do what. Routes are mounted
 * from these entries (see mountAdminRoute), and the role-matrix test iterates them.
 */
export const ADMIN_ROUTES = {
  applyConfig: { method: 'post', path: '/config', role: 'operator', body: '2mb' },

  listWorkloads: { method: 'get', path: '/workloads', role: 'viewer' },
  getWorkload: { method: 'get', path: '/workloads/:id', role: 'viewer' },
  putWorkload: { method: 'put', path: '/workloads/:id', role: 'operator', body: SPEC_BODY },
  suspendWorkload: { method: 'post', path: '/workloads/:id/suspend', role: 'operator', body: SMALL_BODY },
  retireWorkload: { method: 'post', path: '/workloads/:id/retire', role: 'operator', body: SMALL_BODY },
  activateWorkload: { method: 'post', path: '/workloads/:id/activate', role: 'operator', body: SMALL_BODY },

  listIssuers: { method: 'get', path: '/issuers', role: 'viewer' },
  getIssuer: { method: 'get', path: '/issuers/:id', role: 'viewer' },
  putIssuer: { method: 'put', path: '/issuers/:id', role: 'operator', body: SPEC_BODY },
  deleteIssuer: { method: 'delete', path: '/issuers/:id', role: 'operator' },

  listTasks: { method: 'get', path: '/tasks', role: 'viewer' },
  getTask: { method: 'get', path: '/tasks/:id', role: 'viewer' },
  putTask: { method: 'put', path: '/tasks/:id', role: 'operator', body: SPEC_BODY },
  deleteTask: { method: 'delete', path: '/tasks/:id', role: 'operator' },

  // Signal types, sources and policies live in the applied configuration document: each write is an
  // apply of the current configuration with that one entry changed.
  listSignalTypes: { method: 'get', path: '/signal-types', role: 'viewer' },
  getSignalType: { method: 'get', path: '/signal-types/:id', role: 'viewer' },
  putSignalType: { method: 'put', path: '/signal-types/:id', role: 'operator', body: SPEC_BODY },
  deleteSignalType: { method: 'delete', path: '/signal-types/:id', role: 'operator' },
  listSignalSources: { method: 'get', path: '/signal-sources', role: 'viewer' },
  getSignalSource: { method: 'get', path: '/signal-sources/:id', role: 'viewer' },
  putSignalSource: { method: 'put', path: '/signal-sources/:id', role: 'operator', body: SPEC_BODY },
  deleteSignalSource: { method: 'delete', path: '/signal-sources/:id', role: 'operator' },
  listPolicies: { method: 'get', path: '/policies', role: 'viewer' },
  getPolicy: { method: 'get', path: '/policies/:id', role: 'viewer' },
  putPolicy: { method: 'put', path: '/policies/:id', role: 'operator', body: SPEC_BODY },
  deletePolicy: { method: 'delete', path: '/policies/:id', role: 'operator' },

  listGrants: { method: 'get', path: '/grants', role: 'viewer' },
  getGrant: { method: 'get', path: '/grants/:id', role: 'viewer' },

  listApprovals: { method: 'get', path: '/approvals', role: 'viewer' },
  getApproval: { method: 'get', path: '/approvals/:id', role: 'viewer' },
  // Deciding a step-up is what the approver role exists for.
  approveApproval: { method: 'post', path: '/approvals/:id/approve', role: 'approver', body: SMALL_BODY },
  denyApproval: { method: 'post', path: '/approvals/:id/deny', role: 'approver', body: SMALL_BODY },
  // A receiver sees every step-up (and a delegated approver decides some): admin only, like CAEP webhooks.
  createApprovalWebhook: { method: 'post', path: '/approval-webhooks', role: 'admin', body: SMALL_BODY },

  // Keys are admin-only, listing included: the list says who holds which power, which a viewer need not know.
  createKey: { method: 'post', path: '/keys', role: 'admin', body: SMALL_BODY },
  listKeys: { method: 'get', path: '/keys', role: 'admin' },
  revokeKey: { method: 'post', path: '/keys/:id/revoke', role: 'admin', body: SMALL_BODY },
} as const satisfies Record<string, AdminRoute>;

export type AdminRouteName = keyof typeof ADMIN_ROUTES;
