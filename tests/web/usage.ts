// The public API used as docs/client.md shows it, through the .d.ts files (as a user's
// TypeScript or editor sees it). If the declarations disagree with the docs, tsc fails.
import {
  addLocale, connect, ENGLISH, subscribeTopic, translator,
} from "../../tocsin/web/static/tocsin/tocsin.js";
import {
  compareToasts, getDefaultClient, HttpError, PRIORITY_RANK, pushState, pushSupported, safeUrl,
  subscribePush, timeAgo, tokenSubject, TocsinBell, TocsinStatus, TocsinToasts, unsubscribePush,
  VERSION,
} from "../../tocsin/web/static/tocsin/define.js";
import type {
  ActionDetail, Catalogue, CatalogueKey, Channel, ClientState, ConnectionStatus, EmailDigest, Preferences, PushOptions,
  PushState, PushSubscriptionInfo, Role, TocsinClient, TocsinNotification, TopicEvent, TopicFeed,
  TopicState, Translator, TypePreference,
} from "../../tocsin/web/static/tocsin/tocsin.js";

declare function render(events: readonly TopicEvent[]): void;

export async function embed(): Promise<void> {
  // "Embed it in your app"
  connect({
    url: "https://tocsin.example.com",
    token: () => fetch("/my-app/tocsin-token").then((r) => r.json()).then((j) => j.token),
  });
  const bell = document.querySelector("tocsin-bell");
  if (bell) {
    bell.client = getDefaultClient();
    bell.show();
    bell.hide(true);
    bell.toggle();
    const open: boolean = bell.expanded;
    void open;
  }
  const toasts: TocsinToasts | null = document.querySelector("tocsin-toasts");
  const visible: number | undefined = toasts?.maxVisible;
  const status: TocsinStatus | null = document.querySelector("tocsin-status");
  void [visible, status, TocsinBell];
}

export async function library(url: string, token: string): Promise<TocsinClient> {
  // "The client library"
  const client = connect({
    url, token, user: "alice", pageSize: 30, shareConnection: true, browserNotifications: true,
    openUrl: (u: string, n: TocsinNotification) => { console.log(u, n.id); },
    backoffBase: 1000, backoffMax: 30000,
  });
  const unsubscribe: () => void = client.subscribe((s: ClientState) => {
    console.log(s.unreadCount, s.notifications, s.connectionStatus);
    const st: ConnectionStatus = s.connectionStatus;
    const role: Role = s.role;
    const flags: boolean[] = [s.loaded, s.loading, s.hasMore];
    const pending: number = s.pendingActions;
    const perm: NotificationPermission | "unsupported" = s.permission;
    const err: string | undefined = s.error?.message;
    const user: string = s.user;
    const toast: TocsinNotification | undefined = s.toastQueue[0];
    void [st, role, flags, pending, perm, err, user, toast];
  });
  unsubscribe();
  await client.ready;
  const s: ClientState = client.state;
  const first = client.notifications[0];
  if (first) {
    const eventId: string | undefined = first.eventId;
    void eventId;
    await client.markRead(first.id);
    await client.markUnread(first.id);
    client.open(first.id);
    client.dismissToast(first.id);
    await client.dismiss(first.id);
    const order: number = compareToasts(first, s.toastQueue[0] ?? first);
    void order;
  }
  await client.markAllRead();
  await client.markAllRead({ type: "comment" });
  await client.loadMore();
  const p: NotificationPermission | "unsupported" = await client.requestBrowserPermission();
  const denied: boolean = client.permissionDenied;
  await client.refetch();
  const same: TocsinClient = client.store;
  const counts: number[] = [client.unreadCount, client.toastQueue.length];
  const cs: ConnectionStatus = client.connectionStatus;
  const role: Role = client.role;
  void [p, denied, same, counts, cs, role];
  client.addEventListener("notification", (e) => {
    const n = (e as CustomEvent<TocsinNotification>).detail;
    console.log(n.title);
  });
  client.addEventListener("action", (e) => {
    const d = (e as CustomEvent<ActionDetail>).detail;
    console.log(d.kind, d.ids, d.type);
  });
  client.disconnect();
  return client;
}

export async function topics(url: string, token: string): Promise<TopicFeed> {
  // "Topic feeds (activity streams)"
  const feed = subscribeTopic({ url, token, topic: "team:core" });
  feed.subscribe(({ events, connectionStatus, replayedCount }: TopicState) => {
    render(events);
    console.log(connectionStatus, replayedCount, events[0]?.replayed);
  });
  const posted: TopicEvent = await feed.post({ type: "comment", title: "Alice commented on the roadmap" });
  await feed.ready;
  console.log(posted.id, feed.topic, feed.state.loaded);
  feed.disconnect();
  return feed;
}

export function helpers(): void {
  const link: string | null = safeUrl("https://example.com/x");
  const sub: string = tokenSubject("a.b.c");
  const ago: string = timeAgo(Date.now() - 120_000);
  const rank: number = PRIORITY_RANK.urgent;
  const v: string = VERSION;
  const err = new HttpError(404, "Not found", "not_found");
  const code: string | undefined = err.code;
  const status: number = err.status;
  void [link, sub, ago, rank, v, code, status];
}

export function push(client: TocsinClient): void {
  // "Reach people whose tab is closed: Web Push"
  const button = document.querySelector("#notify-me");
  button?.addEventListener("click", () => {
    // from the click: subscribePush asks for notification permission
    subscribePush().then(
      (sub: PushSubscriptionInfo) => console.log("push on", sub.id, sub.endpoint),
      (err: Error) => console.warn(err.message),
    );
  });
  const appWorker: PushOptions = { client, serviceWorker: "/tocsin-sw.js", scope: "/" };
  const standalone: PushOptions = { url: "https://tocsin.example.com", token: () => "eyJ…" };
  void subscribePush(appWorker).catch(() => {});
  void unsubscribePush(standalone).then((had: boolean) => console.log(had));
  void pushState().then((st: PushState) => {
    const shown: boolean = pushSupported() && st !== "unsupported";
    console.log(shown);
  });
}

export async function reachPreferences(client: TocsinClient): Promise<Preferences> {
  const p = await client.preferences();
  const digest: EmailDigest | undefined = p.emailDigest;
  const comment: TypePreference = {
    channels: ["inbox", "interrupt", "push", "email"] satisfies Channel[],
    minPriority: "low", pushMinPriority: "high", emailAfter: 900,
  };
  void digest;
  return client.savePreferences({ ...p, emailDigest: "daily", types: { ...p.types, comment } });
}

export function language(): TocsinClient {
  // "Language": a locale, an app's own wording (a plural too), display names, a language
  addLocale("pt", { "bell.markAll": "Marcar tudo como lido" });
  const strings: Partial<Catalogue> = {
    "bell.markAll": "Clear all",
    "bell.labelUnread": { one: "Inbox, {count} new", other: "Inbox, {count} new" },
  };
  const client = connect({ token: "t", locale: "de", strings, displayName: (u) => u.toUpperCase() });
  const t: Translator = client.i18n();
  const said: string = t.t("bell.labelUnread", { count: 2 }) + t.ago(Date.now()) + t.when(Date.now());
  const key: CatalogueKey = "toast.more";
  console.log(said, key, ENGLISH["bell.markAll"], translator("ja").t(key, { count: 3 }));
  const prefs: Preferences | null = client.state.preferences;
  void prefs;
  void client.unsnooze("n1");
  void client.snoozed().then((items) => items.map((n) => n.snoozedUntil));
  return client;
}
