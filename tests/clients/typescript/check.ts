// Compiled (not run) by scripts/clients.sh against the types openapi-typescript generates from
// openapi.json into api.d.ts next to this file. Each `@ts-expect-error` proves a type is
// precise: tsc fails if the line it marks compiles.
import type { components, paths, webhooks } from "./api";

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
type Schemas = components["schemas"];

type CreateBody = Json<paths["/deposit/create"]["post"]["requestBody"]>;
type Created = Json<paths["/deposit/create"]["post"]["responses"][200]>;
type CreateConflict = Json<paths["/deposit/create"]["post"]["responses"][409]>;
type Status = Json<paths["/deposit/status"]["get"]["responses"][200]>;
type StatusQuery = NonNullable<paths["/deposit/status"]["get"]["parameters"]["query"]>;
type Callback = Json<paths["/internal/payment-callback"]["post"]["requestBody"]>;
type Sweep = Json<paths["/internal/credit-retry"]["post"]["responses"][200]>;
type CreditCall = Json<webhooks["credit"]["post"]["requestBody"]>;

export const create: CreateBody = { userId: "tg:42", amount: 50000, depositId: "order-1", gateway: "duitku" };
export const createByNumber: CreateBody = { userId: 123, amount: 50000 };
// @ts-expect-error amount is a number
export const badAmount: CreateBody = { userId: "tg:42", amount: "50000" };
// @ts-expect-error userId is required
export const noUser: CreateBody = { amount: 50000 };

export function invoiceUrl(created: Created): string | null {
  return created.paymentUrl;
}

export function conflictCode(error: CreateConflict): "DEPOSIT_CONFLICT" | "CREATE_IN_PROGRESS" | "DEPOSIT_EXPIRED" | undefined {
  return error.error;
}

export const lookup: StatusQuery = { depositId: "order-1" };

export function isCredited(view: Status): boolean {
  const state: "PENDING" | "PAID" | "FAILED" = view.status;
  return state === "PAID" && view.credited;
}

export const paid: Callback = {
  orderId: "order-1",
  reference: "DS000001order-1",
  status: "PAID",
  resultCode: "00",
  duitkuData: { merchantOrderId: "order-1", amount: "50000", paymentMethod: "VC" },
};
// @ts-expect-error status is PAID or FAILED
export const unknownStatus: Callback = { orderId: "order-1", status: "SETTLED" };

export function owed(report: Sweep): number {
  return report.remaining + (report.reconciliation?.pending ?? 0);
}

export function creditOf(call: CreditCall): { user: string; rupiah: number } {
  const status: "PAID" = call.status;
  return { user: call.userId, rupiah: status === "PAID" ? call.amount : 0 };
}

export type Gateway = Schemas["Gateway"];
export const gateways: Gateway[] = ["central", "duitku", "midtrans", "xendit", "tripay"];
// @ts-expect-error not a gateway
export const notAGateway: Gateway = "paypal";
