import { z } from "zod";
import { sql } from "@controlplane/db";

export const TASK_STATUSES = ["queued", "dispatched", "running", "waiting_local_directory", "completed", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const IN_FLIGHT: readonly TaskStatus[] = ["dispatched", "running", "waiting_local_directory"];
export const NON_TERMINAL: readonly TaskStatus[] = ["queued", ...IN_FLIGHT];

export const taskRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  agent_id: z.string(),
  runtime_id: z.string(),
  issue_id: z.string().nullable(),
  chat_session_id: z.string().nullable(),
  autopilot_run_id: z.string().nullable(),
  trigger_comment_id: z.string().nullable(),
  trigger_summary: z.string().nullable(),
  status: z.enum(TASK_STATUSES),
  priority: z.number(),
  context: z.record(z.unknown()).nullable(),
  claim_context: z.record(z.unknown()),
  dispatched_at: z.date().nullable(),
  /** While it runs, a claimed task is neither handed out again nor timed out. */
  prepare_lease_expires_at: z.date().nullable(),
  /** The comments the latest claim answer carried (the delivery receipt). */
  delivered_comment_ids: z.array(z.string()),
  started_at: z.date().nullable(),
  completed_at: z.date().nullable(),
  result_json: z.string().nullable(),
  error: z.string().nullable(),
  failure_reason: z.string().nullable(),
  session_id: z.string().nullable(),
  work_dir: z.string().nullable(),
  wait_reason: z.string().nullable(),
  force_fresh_session: z.boolean(),
  initiator_user_id: z.string().nullable(),
  attempt: z.number(),
  max_attempts: z.number(),
  parent_task_id: z.string().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  branch_name: z.string().nullable(),
  durable_work_dir: z.string().nullable(),
  session_rollout_missing: z.boolean(),
  retired_session_id: z.string().nullable(),
});

export type TaskRow = z.infer<typeof taskRow>;

/** Every column of a task, `result` as its raw JSON text. */
export const taskColumns = sql.fragment`
  id, workspace_id, agent_id, runtime_id, issue_id, chat_session_id, autopilot_run_id, trigger_comment_id,
  trigger_summary, status, priority, context, claim_context, dispatched_at, prepare_lease_expires_at, delivered_comment_ids,
  started_at, completed_at,
  result::text AS result_json, error, failure_reason, session_id, work_dir, wait_reason, force_fresh_session,
  initiator_user_id, attempt, max_attempts, parent_task_id, created_at, updated_at,
  branch_name, durable_work_dir, session_rollout_missing, retired_session_id`;

/** The same columns qualified by a table alias (for joins and UPDATE ... FROM). */
export function taskColumnsOf(alias: string) {
  const a = sql.identifier([alias]);
  return sql.fragment`
  ${a}.id, ${a}.workspace_id, ${a}.agent_id, ${a}.runtime_id, ${a}.issue_id, ${a}.chat_session_id,
  ${a}.autopilot_run_id, ${a}.trigger_comment_id, ${a}.trigger_summary, ${a}.status, ${a}.priority, ${a}.context,
  ${a}.claim_context, ${a}.dispatched_at, ${a}.prepare_lease_expires_at, ${a}.delivered_comment_ids,
  ${a}.started_at, ${a}.completed_at, ${a}.result::text AS result_json,
  ${a}.error, ${a}.failure_reason, ${a}.session_id, ${a}.work_dir, ${a}.wait_reason, ${a}.force_fresh_session,
  ${a}.initiator_user_id, ${a}.attempt, ${a}.max_attempts, ${a}.parent_task_id, ${a}.created_at, ${a}.updated_at,
  ${a}.branch_name, ${a}.durable_work_dir, ${a}.session_rollout_missing, ${a}.retired_session_id`;
}

export function statusList(statuses: readonly TaskStatus[]) {
  return sql.array([...statuses], "text");
}
