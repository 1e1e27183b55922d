import type { GrantTables } from '../grants/grant.table.js';
import type { KeyTables } from '../keys/key.table.js';
import type { RegistryTables } from '../config/registry.table.js';
import type { IdentityTables } from '../identity/identity.table.js';
import type { AdminTables } from '../http/admin/admin.table.js';
import type { SignalTables } from '../signals/signal.table.js';
import type { DecisionTables } from '../decisions/decision.table.js';
import type { AuditOutboxTables, AuditTables } from '../audit/audit.table.js';
import type { EventTables } from '../events/event.table.js';
import type { ApprovalTables } from '../approvals/approval.table.js';

/** Every table the broker reads or writes; each area declares its own and owns its migrations. */
export interface DB
  extends RegistryTables,
    GrantTables,
    KeyTables,
    IdentityTables,
    AdminTables,
    SignalTables,
    DecisionTables,
    AuditTables,
    AuditOutboxTables,
    EventTables,
    ApprovalTables {}
