/**
 * Bounds on what callers may send. The gateway checks them at the edge and
 * answers the contract's 400; services check the ones that protect their own
 * storage and events, so internal gRPC callers meet the same bounds. Nothing
 * past the gateway (Postgres, NATS's 1 MiB payload, gRPC's 8 MiB message)
 * is ever the validator. The README's "Limits" table lists each one.
 *
 * String lengths are in UTF-16 code units (JavaScript's `length`), which is
 * never less than the character count.
 */
export const LIMITS = {
  /**
   * Body of a route whose fields are all short (heartbeat, start, progress,
   * usage, session, deregister...): far above anything legitimate, far below
   * the general BODY_LIMIT_BYTES, so the hottest routes never buffer megabytes.
   */
  SMALL_BODY_BYTES: 256 * 1024,
  /**
   * A body over its route's limit is still read (and discarded) up to this
   * many bytes before the 413, so the client gets to read the answer instead
   * of a connection reset mid-upload; beyond it the connection is closed.
   */
  REFUSED_BODY_DRAIN_BYTES: 64 * 1024 * 1024,
  /** Ids, names, kinds, versions, providers, models, statuses, reasons. */
  NAME_CHARS: 255,
  /** Paths, URLs and session ids (work_dir, pr_url, session_id, fixed args). */
  PATH_CHARS: 4_096,
  /** Short free text broadcast as is (a progress summary, a wait reason). */
  SUMMARY_CHARS: 16_384,
  /** A profile description. */
  DESCRIPTION_CHARS: 16_384,
  /** Long free text stored on a row (a task's output or error, a message's content or output). */
  TEXT_CHARS: 1_048_576,
  /** A JSON object stored as is (a message's input, a daemon's action result), serialized. */
  JSON_OBJECT_CHARS: 1_048_576,
  /** Nesting of any JSON request body (Go's decoder allows 10,000; nothing legitimate nears this). */
  JSON_DEPTH: 128,
  /** Runtimes in one register (a daemon has one per agent CLI and custom profile). */
  REGISTER_RUNTIMES: 100,
  /** Old daemon ids one register may fold in. */
  LEGACY_DAEMON_IDS: 32,
  /** Runtime ids one daemon socket may watch (each is checked at the upgrade). */
  RUNTIMES_PER_SOCKET: 1_000,
  /** Runtime ids in one deregister. */
  DEREGISTER_RUNTIMES: 100,
  /** Messages in one batch (the daemon flushes every 500 ms: a few dozen at most). */
  MESSAGES_PER_BATCH: 1_000,
  /** Usage entries in one report (one per provider and model). */
  USAGE_ENTRIES: 100,
  /** Fixed arguments of a profile. */
  FIXED_ARGS: 64,
  /** Entries of a model or skill list a daemon reports. */
  RESULT_LIST_ENTRIES: 1_000,
  /**
   * Issue ids in one batch gc-check: the original's bound (400 "too many
   * issue_ids" past it); today's daemon sends chunks of at most this many.
   */
  GC_CHECK_ISSUE_IDS: 500,
  /**
   * Body of a batch gc-check: the original read at most 64 KiB of it (400
   * "invalid request body" past it); 500 ids take under 20 KiB.
   */
  GC_CHECK_BODY_BYTES: 64 * 1024,
} as const;

/** The range of a protobuf int32 (progress steps, message seq). */
export const INT32_MIN = -2_147_483_648;
export const INT32_MAX = 2_147_483_647;
