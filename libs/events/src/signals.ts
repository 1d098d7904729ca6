/**
 * Core NATS subjects for signals that are not events: not stored, best
 * effort, fanned out to every replica that listens. They sit outside the
 * event stream's `<root>.>`, so JetStream never keeps them. Producers and
 * listeners in different services name them here, in one place.
 */

/**
 * "<root>_wake.task.<runtime>": the runtime has work (a task queued for it,
 * or a slot freed by a finished task). The payload is the queued task's id,
 * or empty. Waiting claims and daemon sockets wake on it; a lost one costs
 * only latency, since claims look for themselves.
 */
export function taskWakePrefix(subjectRoot: string): string {
  return `${subjectRoot}_wake.task`;
}

export function taskWakeSubject(subjectRoot: string, runtimeId: string): string {
  return `${taskWakePrefix(subjectRoot)}.${runtimeId}`;
}

/**
 * "<root>_liveness.<kind>.<runtime>": what every liveness replica must learn
 * at once (online, offline, deleted, pending). `pending` also tells the
 * gateway holding the runtime's socket that an action waits for its daemon.
 */
export function livenessSignalPrefix(subjectRoot: string): string {
  return `${subjectRoot}_liveness`;
}

export function pendingActionSubject(subjectRoot: string, runtimeId: string): string {
  return `${livenessSignalPrefix(subjectRoot)}.pending.${runtimeId}`;
}
