#!/usr/bin/env node
// cpctl runs from TypeScript sources; tsx compiles them on the fly.
import { register } from "tsx/esm/api";

register();
await import("../tools/cpctl/src/main.ts");
