/**
 * Function chaining (generator style): F1 -> F2 -> F3 -> F4, each step taking the previous one's
 * output, with try/catch compensation: when a step fails, the steps already done are undone in
 * reverse order (a saga).
 *
 *   BookTrip:  flight = ReserveFlight(trip); hotel = ReserveHotel(...); payment = ChargeCard(...);
 *              return SendConfirmation(...)
 *              on failure: CancelHotel, CancelFlight, then report the cancellation
 *
 * The sample books two trips: one goes through, one has its card declined at F3 and is compensated.
 */
import { type OrchestrationContext, Registry, TaskFailedError, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, withHarness } from './harness.js';

export interface Trip {
  tripId: string;
  city: string;
  nights: number;
  card: string;
}

export type BookingResult =
  | { status: 'Confirmed'; confirmation: string }
  | { status: 'Cancelled'; reason: string; compensated: string[] };

// F1..F4: each takes what the previous step produced.
export const ReserveFlight = defineActivity('ReserveFlight', async (trip: Trip) => `FL-${trip.tripId}-${trip.city.slice(0, 3).toUpperCase()}`);
export const ReserveHotel = defineActivity('ReserveHotel', async (req: { trip: Trip; flight: string }) => `HT-${req.trip.tripId}-${req.trip.nights}N`);
export const ChargeCard = defineActivity('ChargeCard', async (req: { trip: Trip; flight: string; hotel: string }) => {
  if (req.trip.card === 'declined') throw new Error(`card ending ${req.trip.card} was declined`);
  return `PAY-${req.trip.tripId}-${120 * req.trip.nights}EUR`;
});
export const SendConfirmation = defineActivity(
  'SendConfirmation',
  async (b: { trip: Trip; flight: string; hotel: string; payment: string }) => `${b.trip.city}: ${b.flight}, ${b.hotel}, ${b.payment}`,
);
// Compensations.
export const CancelHotel = defineActivity('CancelHotel', async (hotel: string) => `cancelled ${hotel}`);
export const CancelFlight = defineActivity('CancelFlight', async (flight: string) => `cancelled ${flight}`);

export const BookTrip = defineOrchestrator('BookTrip', function* (ctx: OrchestrationContext, trip: Trip): Generator<unknown, BookingResult, any> {
  let flight: string | undefined;
  let hotel: string | undefined;
  try {
    flight = (yield ctx.callActivity(ReserveFlight, trip)) as string;
    hotel = (yield ctx.callActivity(ReserveHotel, { trip, flight })) as string;
    const payment = (yield ctx.callActivity(ChargeCard, { trip, flight, hotel })) as string;
    const confirmation = (yield ctx.callActivity(SendConfirmation, { trip, flight, hotel, payment })) as string;
    return { status: 'Confirmed', confirmation };
  } catch (err) {
    if (!(err instanceof TaskFailedError)) throw err;
    // Compensation: undo what was done, newest first.
    const compensated: string[] = [];
    if (hotel) compensated.push((yield ctx.callActivity(CancelHotel, hotel)) as string);
    if (flight) compensated.push((yield ctx.callActivity(CancelFlight, flight)) as string);
    return { status: 'Cancelled', reason: `${err.taskName} failed: ${err.failure.message}`, compensated };
  }
});

export const registry = new Registry().add(ReserveFlight, ReserveHotel, ChargeCard, SendConfirmation, CancelHotel, CancelFlight, BookTrip);

export interface ChainingResult {
  confirmed: InstanceReport<BookingResult>;
  cancelled: InstanceReport<BookingResult>;
}

export async function run(opts: SampleOptions): Promise<ChainingResult> {
  return withHarness(opts, registry, async (h) => {
    h.log('BookTrip: ReserveFlight -> ReserveHotel -> ChargeCard -> SendConfirmation, compensated on failure');
    const okId = await h.client.startNew(BookTrip, { input: { tripId: 'T1', city: 'Lisbon', nights: 3, card: '4242' }, instanceId: h.id('trip-ok') });
    const badId = await h.client.startNew(BookTrip, { input: { tripId: 'T2', city: 'Oslo', nights: 2, card: 'declined' }, instanceId: h.id('trip-declined') });
    const confirmed = await h.finish<BookingResult>(okId);
    h.log(`${okId}: ${confirmed.runtimeStatus} ${JSON.stringify(confirmed.output)}`);
    const cancelled = await h.finish<BookingResult>(badId);
    h.log(`${badId}: ${cancelled.runtimeStatus} ${JSON.stringify(cancelled.output)}`);
    return { confirmed, cancelled };
  });
}
