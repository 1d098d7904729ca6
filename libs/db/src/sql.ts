import { sql } from "slonik";

export { sql };
