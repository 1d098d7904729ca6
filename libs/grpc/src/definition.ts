/**
 * The shape ts-proto generates for each unary method of a grpc-js service
 * definition (`XServiceService`). Everything in the kit is typed from it.
 */
export interface UnaryMethodDefinition<Req, Res> {
  path: string;
  requestStream: false;
  responseStream: false;
  requestSerialize: (value: Req) => Buffer;
  requestDeserialize: (value: Buffer) => Req;
  responseSerialize: (value: Res) => Buffer;
  responseDeserialize: (value: Buffer) => Res;
}

// `any` here only widens the generic bound; concrete request/response types are
// recovered with `infer` wherever a definition is used.
// biome-ignore lint/suspicious/noExplicitAny: a bound over every method's request and response types.
export type AnyUnaryMethod = UnaryMethodDefinition<any, any>;

export type ServiceDefinitionOf = Record<string, AnyUnaryMethod>;

export type RequestOf<M> = M extends { requestDeserialize: (value: Buffer) => infer Req } ? Req : never;
export type ResponseOf<M> = M extends { responseDeserialize: (value: Buffer) => infer Res } ? Res : never;

/** "controlplane.profiles.v1.ProfileCatalogService" from any method path of the definition. */
export function serviceNameOf(definition: ServiceDefinitionOf): string {
  const first = Object.values(definition)[0];
  if (!first) throw new Error("service definition has no methods");
  return first.path.split("/")[1] ?? "";
}
