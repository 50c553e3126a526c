// Type declarations for the Tocsin browser client (tocsin.js) and components (define.js).

export type Priority = "urgent" | "high" | "medium" | "low";
/** `unauthorized`: the server refused the token (the client keeps asking the token function for a new one). */
export type ConnectionStatus = "connected" | "reconnecting" | "disconnected" | "offline" | "unauthorized";
/**
 * How events arrive: `stream` (SSE), or `poll` (long-polling, the fallback when a stream
 * does not open within `streamTimeout`, e.g. behind a buffering proxy).
 */
export type Transport = "stream" | "poll";
/** What the client tells a token function: `refused` = the server refused the last token, mint a new one. */
export interface TokenRequest {
  refused: boolean;
}
/** `leader`: this tab holds the server connection; `follower`: another tab does; `solo`: no sharing. */
export type Role = "leader" | "follower" | "solo";

export interface TocsinNotification {
  id: string;
  type: string;
  title: string;
  body: string;
  priority: Priority;
  /** ms since the epoch */
  timestamp: number;
  read: boolean;
  readAt?: number | null;
  groupKey?: string | null;
  url?: string | null;
  actor?: string | null;
  source?: string | null;
  data?: Record<string, unknown> | null;
  expiresAt?: number | null;
  /**
   * The stream event id at which the notification was created: an opaque string,
   * `"<epoch>-<seq>"` (e.g. `"3f9a02c1-42"`; plain decimals from older servers).
   */
  eventId?: string;
  /** A client-side message (e.g. "the change was undone"), not from the server. */
  local?: boolean;
  /**
   * Set by the client on a notification of an incident (`data.incident`) once someone
   * acknowledged it; `pending` while this user's own `ack()` is on its way.
   */
  acked?: IncidentAck;
  /** Delivered without interrupting (no toast, no OS notification): docs/attention.md. */
  silent?: boolean;
  silentReason?: "preferences" | "dnd" | "quiet_hours" | string;
  /** A group of publishes with one `groupKey` shown as this one row: docs/grouping.md. */
  group?: NotificationGroup | null;
  /** In `snoozed()`: when it comes back (ms since the epoch). */
  snoozedUntil?: number;
}

/**
 * `count` publishes of one `groupKey`; `actors` latest first, each once, at most 5;
 * `people` how many distinct actors there are in all (one person acting twice is one).
 */
export interface NotificationGroup {
  key: string;
  count: number;
  actors: string[];
  people?: number;
}

export type Channel = "inbox" | "interrupt" | "push" | "email";

export interface TypePreference {
  channels: Channel[];
  minPriority: Priority;
  /** With the `push` channel: Web Push only from this priority up (server default "high"). */
  pushMinPriority?: Priority;
  /** With the `email` channel: email it if still unread this many seconds after it arrived (default 900). */
  emailAfter?: number;
}

/** `hourly` / `daily`: the emails due in a period go out as one digest at its end. */
export type EmailDigest = "off" | "hourly" | "daily";

export interface QuietHours {
  /** IANA name, e.g. "Europe/Berlin" */
  timezone: string;
  /** "HH:MM" */
  start: string;
  end: string;
  days?: ("mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun")[];
}

/** GET/PUT /api/preferences (docs/attention.md). */
export interface Preferences {
  types: Record<string, TypePreference>;
  quietHours: QuietHours | null;
  /** ms since the epoch */
  dnd: { until: number; since?: number } | null;
  urgentBypassesQuiet: boolean;
  /** Absent from servers without email. */
  emailDigest?: EmailDigest;
  /** read-only: the publisher's per-type defaults */
  defaults?: Record<string, TypePreference>;
}

/** Who acknowledged an incident (docs/escalation.md), and when (ms since the epoch). */
export interface IncidentAck {
  by: string;
  at: number;
  pending?: boolean;
}

export interface ClientState {
  /** Newest first, with optimistic changes applied. */
  readonly notifications: readonly TocsinNotification[];
  readonly unreadCount: number;
  /** Urgent before high before medium before low, then oldest first. */
  readonly toastQueue: readonly TocsinNotification[];
  readonly connectionStatus: ConnectionStatus;
  /** `poll` while the client long-polls because streaming does not work. */
  readonly transport: Transport;
  readonly role: Role;
  /** The first page of history has arrived. */
  readonly loaded: boolean;
  /** An older page is being fetched. */
  readonly loading: boolean;
  /** Older history exists on the server. */
  readonly hasMore: boolean;
  /** Actions not yet confirmed by the server (queued while offline). */
  readonly pendingActions: number;
  readonly permission: NotificationPermission | "unsupported";
  /** The last failure shown to the user (an undone action, a failed load). */
  readonly error: { message: string; at: number } | null;
  readonly user: string;
  /**
   * The user's preferences as last known: loaded by `preferences()`, replaced by
   * `savePreferences()` and by the stream when they change in another tab or device
   * (null until first loaded). Show do-not-disturb etc. from here, not from a copy.
   */
  readonly preferences: Preferences | null;
}

export interface ConnectOptions {
  /** Base URL of the Tocsin server; default: this page's origin. */
  url?: string;
  /** A subscriber token, or a function returning a fresh one (called on every connect). */
  token: string | ((request: TokenRequest) => string | Promise<string>);
  /** The user id; default: the token's `sub` claim. Tabs share a connection per user. */
  user?: string;
  /** History page size (default 30). */
  pageSize?: number;
  /** Share one connection across this browser's tabs (default true). */
  shareConnection?: boolean;
  /** OS notifications for urgent/high notifications while the tab is hidden (default true). */
  browserNotifications?: boolean;
  /** How to follow a notification's http(s) url (default: navigate this tab). */
  openUrl?: (url: string, notification: TocsinNotification) => void;
  /** First manual reconnect delay in ms (default 1000); doubles up to `backoffMax`. */
  backoffBase?: number;
  /** Cap of the reconnect delay in ms (default 10000). */
  backoffMax?: number;
  /** ms a stream may take to open before the client falls back to long-polling (default 4000). */
  streamTimeout?: number;
  /** ms of long-polling before streaming is tried again (default 60000). */
  streamRetry?: number;
  /**
   * The components' language (a BCP 47 tag: "de", "fr-CA"); default: the element's or
   * page's `lang`, else the browser's. Shipped: en, de, fr, es, ja (`addLocale` adds more).
   */
  locale?: string;
  /** Your own wording for any string of the catalogue, in whichever locale is chosen. */
  strings?: Partial<Catalogue>;
  /** A user's name as people know it (who acknowledged, who is here); default: the id. */
  displayName?: (user: string) => string | null | undefined;
}

/** A plural entry: forms by `Intl.PluralRules` category of `{count}`; `other` is required. */
export type PluralForms = Partial<Record<"zero" | "one" | "two" | "few" | "many", string>> & { other: string };

/**
 * Every string the components show (lib/locales/en.js holds the English ones). `{name}`
 * placeholders are filled in by the components; times, numbers and lists come from
 * `Intl` in the chosen locale.
 */
export interface Catalogue {
  "bell.label": string;
  "bell.labelUnread": PluralForms;
  "bell.labelNone": string;
  "bell.title": string;
  "bell.close": string;
  "bell.markAll": string;
  "bell.preferences": string;
  "bell.back": string;
  "bell.filters": string;
  "bell.unreadOnly": string;
  "bell.snoozedOnly": string;
  "bell.filterType": string;
  "bell.filterSource": string;
  "bell.allTypes": string;
  "bell.allSources": string;
  "bell.list": string;
  "bell.loading": string;
  "bell.empty": string;
  "bell.noMatch": string;
  "bell.noSnoozed": string;
  "perm.enable": string;
  "perm.enablePhone": string;
  "perm.denied": string;
  "perm.dismiss": string;
  "push.toggle": string;
  "push.working": string;
  "push.on": string;
  "push.off": string;
  "push.denied": string;
  "push.notGranted": string;
  "push.failed": string;
  "row.opensLink": string;
  "row.silent": string;
  "row.read": string;
  "row.unread": string;
  "row.markRead": string;
  "row.markReadLabel": string;
  "row.markUnread": string;
  "row.markUnreadLabel": string;
  "row.dismiss": string;
  "row.dismissLabel": string;
  "row.ack": string;
  "row.ackLabel": string;
  "row.ackTitle": string;
  "row.snooze": string;
  "row.snoozeLabel": string;
  "row.snoozedUntil": string;
  "row.unsnooze": string;
  "row.unsnoozeLabel": string;
  "priority.urgent": string;
  "priority.high": string;
  "priority.medium": string;
  "priority.low": string;
  "snooze.menu": string;
  "snooze.for": string;
  "snooze.tomorrow": string;
  "snooze.done": string;
  "snooze.undo": string;
  "snooze.undone": string;
  "group.others": PluralForms;
  "group.more": PluralForms;
  "group.updates": PluralForms;
  "group.notifications": PluralForms;
  "group.unread": PluralForms;
  "group.expand": string;
  "group.collapse": string;
  "group.markRead": string;
  "toast.region": string;
  "toast.dismiss": string;
  "toast.dismissLabel": string;
  "toast.more": PluralForms;
  "toast.moreLabel": PluralForms;
  "toast.ack": string;
  "toast.ackLabel": string;
  "digest.toast": PluralForms;
  "incident.countdown": string;
  "incident.escalating": string;
  "incident.holder": string;
  "incident.ackedByYou": string;
  "incident.ackedBy": string;
  "incident.ackedByAt": string;
  "incident.ackedByYouAt": string;
  "status.reconnecting": string;
  "status.offline": string;
  "status.unauthorized": string;
  "status.polling": string;
  "status.retry": string;
  "presence.nobody": string;
  "presence.count": PluralForms;
  "presence.idle": string;
  "presence.more": PluralForms;
  "presence.joined": string;
  "presence.left": string;
  "prefs.label": string;
  "prefs.loading": string;
  "prefs.loadFailed": string;
  "prefs.saving": string;
  "prefs.saved": string;
  "prefs.savedFor": string;
  "prefs.saveFailed": string;
  "dnd.title": string;
  "dnd.onUntil": string;
  "dnd.on": string;
  "dnd.off": string;
  "dnd.hour": string;
  "dnd.tomorrow": string;
  "dnd.turnOff": string;
  "dnd.savedHour": string;
  "dnd.savedTomorrow": string;
  "dnd.savedOff": string;
  "quiet.title": string;
  "quiet.on": string;
  "quiet.from": string;
  "quiet.to": string;
  "quiet.zone": string;
  "quiet.bypass": string;
  "quiet.saved": string;
  "types.title": string;
  "types.none": string;
  "type.interrupt": string;
  "type.push": string;
  "type.email": string;
  "type.minLabel": string;
  "type.pushMinLabel": string;
  "type.emailAfterLabel": string;
  "type.andUp": string;
  "email.title": string;
  "email.send": string;
  "email.atOnce": string;
  "email.after": string;
  "email.digestOff": string;
  "email.digestHourly": string;
  "email.digestDaily": string;
  "email.digestSaved": string;
  "time.now": string;
  "error.load": string;
  "error.older": string;
  "error.snooze": string;
  "error.quoted": string;
  "error.read": string;
  "error.unread": string;
  "error.readAll": string;
  "error.dismiss": string;
  "error.ack": string;

}
export type CatalogueKey = keyof Catalogue;

/** Strings, plurals, times and lists of one locale (what the components use). */
export declare class Translator {
  constructor(locale: string, overrides?: Partial<Catalogue>);
  readonly locale: string;
  t(key: CatalogueKey, vars?: Record<string, string | number>): string;
  num(n: number): string;
  join(items: string[]): string;
  ago(ts: number, now?: number): string;
  date(ts: number): string;
  when(ts: number, now?: number): string;
  duration(seconds: number): string;
}
/** Add (or extend) a language; keys it lacks fall back to English. */
export declare function addLocale(tag: string, strings: Partial<Catalogue>): void;
/** The languages there are catalogues for. */
export declare function locales(): string[];
/** The translator for a locale with an app's overrides. */
export declare function translator(locale: string, overrides?: Partial<Catalogue>): Translator;
/** The English catalogue (every key). */
export declare const ENGLISH: Readonly<Catalogue>;

export interface ActionDetail {
  kind: "read" | "unread" | "readAll" | "dismiss" | "ack";
  ids?: string[];
  type?: string;
  /**
   * Resolves once the action was sent (offline: after the connection returns): true when
   * the server accepted it, false when it refused it and the change was undone.
   */
  settled: Promise<boolean>;
}

export declare class HttpError extends Error {
  readonly status: number;
  readonly code?: string;
  constructor(status: number, message: string, code?: string);
}

/**
 * A user's live inbox. Events: `notification` (CustomEvent<TocsinNotification>, live
 * arrivals), `action` (CustomEvent<ActionDetail>), `error` (CustomEvent<{message: string}>).
 */
export declare class TocsinClient extends EventTarget {
  constructor(opts: ConnectOptions);
  readonly user: string;
  /** `connect({locale})`, if given. */
  readonly locale: string | undefined;
  /** `connect({strings})`, if given. */
  readonly strings: Partial<Catalogue> | undefined;
  /** The translator for this client's words in `locale` (default: its own, else the page's). */
  i18n(locale?: string): Translator;
  /** `connect({displayName})` for `user`, else the id. */
  displayName(user: string): string;
  /** The server's base URL ("" for this origin). */
  readonly base: string;
  /** The current token (calls the token function if one was given). */
  getToken(): Promise<string>;
  /** Resolves once the first page of history is in (or failed). */
  readonly ready: Promise<void>;
  readonly state: ClientState;
  readonly notifications: readonly TocsinNotification[];
  readonly unreadCount: number;
  readonly toastQueue: readonly TocsinNotification[];
  readonly connectionStatus: ConnectionStatus;
  /** `poll` while the client long-polls because streaming does not work. */
  readonly transport: Transport;
  readonly role: Role;
  readonly permission: NotificationPermission | "unsupported";
  /** Denied now, or denied in an earlier visit (remembered in localStorage). */
  readonly permissionDenied: boolean;
  /** The client is its own store. */
  readonly store: this;
  /** Calls `listener` now and after every change; returns an unsubscribe function. */
  subscribe(listener: (state: ClientState) => void): () => void;
  /** The action promises resolve like `ActionDetail.settled`: true = accepted, false = refused and undone. */
  markRead(id: string): Promise<boolean>;
  markUnread(id: string): Promise<boolean>;
  /** Marks everything seen so far read (optionally of one type); later arrivals stay unread. */
  markAllRead(opts?: { type?: string }): Promise<boolean>;
  dismiss(id: string): Promise<boolean>;
  /**
   * Acknowledge the incident this notification belongs to, for everyone it notified
   * (optimistic; resolves false at once when it is not part of an incident).
   */
  ack(id: string): Promise<boolean>;
  /** Snooze until `until` (ms since the epoch); it comes back as a new notification event. */
  snooze(id: string, until: number): Promise<boolean>;
  /** Bring a snoozed notification back now (undo); it returns as a notification event. */
  unsnooze(id: string): Promise<boolean>;
  /** What is snoozed now, newest first, each with `snoozedUntil` (not part of `state`). */
  snoozed(): Promise<TocsinNotification[]>;
  /** GET /api/preferences (fields an older server lacks filled with the defaults). */
  preferences(): Promise<Preferences>;
  /** PUT /api/preferences; resolves to what the server stored. */
  savePreferences(p: Preferences): Promise<Preferences>;
  dismissToast(id: string): void;
  /** Mark read and follow the url if it is http(s). */
  open(id: string): void;
  loadMore(): Promise<void>;
  /** Call only from a user gesture. */
  requestBrowserPermission(): Promise<NotificationPermission | "unsupported">;
  /** Re-read the newest page of history over HTTP. */
  refetch(): Promise<void>;
  /** While `reconnecting`: try at once instead of after the backoff (`<tocsin-status>`'s "Retry now"). */
  retry(): void;
  disconnect(): void;
}

export interface TopicEvent {
  id: string;
  topic: string;
  type: string;
  title: string;
  body: string;
  actor?: string | null;
  data?: Record<string, unknown> | null;
  timestamp: number;
  /** Arrived on a reconnect, having happened while this tab was offline. */
  replayed?: boolean;
}

export interface TopicState {
  readonly events: readonly TopicEvent[];
  readonly connectionStatus: ConnectionStatus;
  /** `poll` while the client long-polls because streaming does not work. */
  readonly transport: Transport;
  readonly role: Role;
  readonly loaded: boolean;
  readonly replayedCount: number;
}

export interface TopicOptions {
  url?: string;
  token: string | ((request: TokenRequest) => string | Promise<string>);
  topic: string;
  limit?: number;
  user?: string;
  shareConnection?: boolean;
  backoffBase?: number;
  backoffMax?: number;
  streamTimeout?: number;
  streamRetry?: number;
}

/** A topic's activity feed. Event: `activity` (CustomEvent<TopicEvent>). */
export declare class TopicFeed extends EventTarget {
  constructor(opts: TopicOptions);
  readonly topic: string;
  readonly ready: Promise<void>;
  readonly state: TopicState;
  subscribe(listener: (state: TopicState) => void): () => void;
  post(event: { type: string; title: string; body?: string; actor?: string;
    data?: Record<string, unknown> }): Promise<TopicEvent>;
  disconnect(): void;
}

export declare const VERSION: string;
export declare const PRIORITY_RANK: Readonly<Record<Priority, number>>;
export declare function connect(opts: ConnectOptions): TocsinClient;
export declare function subscribeTopic(opts: TopicOptions): TopicFeed;

/** Presence (docs/presence.md). */
export type PresenceState = "active" | "idle";
export interface PresenceMember {
  user: string;
  state: PresenceState;
  /** ms since the epoch: when the member's current state began */
  since: number;
}
export interface ReportOptions {
  url?: string;
  token: string | ((request: TokenRequest) => string | Promise<string>);
  user?: string;
  /** ms without input before a visible tab counts as idle; default 5 minutes */
  idleAfter?: number;
  /** ms a change waits before it is sent; default 1000 */
  debounce?: number;
  /** ms between repeats of an unchanged state; default 2 minutes */
  refresh?: number;
}
export interface PresenceOptions extends Partial<TopicOptions> {
  topic: string;
  /** a feed of the topic the page already has (else one is made from the options) */
  feed?: TopicFeed;
  /** report this browser's own state too (with `token`); default true */
  report?: boolean;
}
/** Reports this browser's state (all its tabs together) with `PUT /api/presence`. */
export interface PresenceReporter {
  readonly state: PresenceState;
  own(): PresenceState;
}
export declare function reportPresence(opts: ReportOptions): PresenceReporter;
/** Who is on a topic, live. Fires `change` (detail: the members). */
export declare class TopicPresence extends EventTarget {
  constructor(opts: PresenceOptions);
  readonly feed: TopicFeed;
  readonly ready: Promise<void>;
  /** sorted by user */
  readonly members: PresenceMember[];
  subscribe(listener: (members: PresenceMember[]) => void): () => void;
  refetch(): Promise<void>;
  disconnect(): void;
}
export declare function trackPresence(opts: PresenceOptions): TopicPresence;
export declare function getDefaultClient(): TocsinClient | null;
/** The absolute URL if http(s), else null. */
export declare function safeUrl(url: unknown): string | null;
export declare function tokenSubject(token: string): string;
export declare function compareToasts(a: TocsinNotification, b: TocsinNotification): number;
/** "just now", "2 min. ago", … by `Intl.RelativeTimeFormat` in `locale` (default: the page's). */
export declare function timeAgo(ts: number, now?: number, locale?: string): string;

/** Web Push in this browser (docs/client.md, "Reach people whose tab is closed"). */
export type PushState = "unsupported" | "denied" | "default" | "subscribed" | "unsubscribed";
export interface PushOptions {
  /** The client whose server and token to use; default: the first client made with `connect()`. */
  client?: TocsinClient;
  /** Without a client: the server's base URL (default: this page's origin) ... */
  url?: string;
  /** ... and a subscriber token (or a function returning one). */
  token?: string | ((request: TokenRequest) => string | Promise<string>);
  /**
   * The service worker script, on this page's origin; default: `<url>/static/tocsin/sw.js`
   * (an app on another origin than the server serves its own, see docs/client.md).
   */
  serviceWorker?: string;
  /** The worker's scope; default: the script's folder. */
  scope?: string;
}
/** A subscription the server holds: `id` for `DELETE /api/push-subscriptions/{id}`. */
export interface PushSubscriptionInfo {
  id: string;
  endpoint: string;
}
/** Whether this browser has service workers, the Push API and notifications. */
export declare function pushSupported(): boolean;
/**
 * Call only from a user gesture (a click): asks for notification permission, registers
 * the service worker, subscribes with the server's key and hands the subscription to the
 * server. Rejects with an Error saying what failed.
 */
export declare function subscribePush(opts?: PushOptions): Promise<PushSubscriptionInfo>;
/** The server forgets the subscription and the browser drops it; true if there was one. */
export declare function unsubscribePush(opts?: PushOptions): Promise<boolean>;
export declare function pushState(opts?: PushOptions): Promise<PushState>;
