// @ts-check
/**
 * OS (system) notifications for urgent and high notifications while the tab is hidden,
 * and the permission they need (asked only from a user gesture; a refusal is remembered).
 * @module tocsin/lib/os-notify
 */
import { safeUrl } from "./util.js";

/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */

const DENIED_KEY = "tocsin:notifications-denied";

export class OsNotifier {
  /**
   * @param {{enabled: boolean, onClick: (id: string) => void, onChange: () => void}} o
   */
  constructor(o) {
    this.o = o;
    /** @type {Map<string, Notification>} */
    this.shown = new Map();
    this.watchPermission();
  }

  /** @returns {NotificationPermission|'unsupported'} */
  get permission() {
    return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
  }

  /** Whether the user denied OS notifications (remembered across visits). */
  get denied() {
    if (this.permission === "denied") return true;
    try {
      return this.permission !== "granted" && !!localStorage.getItem(DENIED_KEY);
    } catch {
      return false;
    }
  }

  /**
   * Ask for permission. Call it only from a user gesture.
   * @returns {Promise<NotificationPermission|'unsupported'>}
   */
  async request() {
    if (typeof Notification === "undefined") return "unsupported";
    const result = await Notification.requestPermission();
    try {
      if (result === "denied") localStorage.setItem(DENIED_KEY, String(Date.now()));
      else localStorage.removeItem(DENIED_KEY);
    } catch {
      /* storage may be unavailable */
    }
    this.o.onChange();
    return result;
  }

  /**
   * Show `n` as a system notification if the tab is hidden, it is urgent or high, and
   * permission was granted.
   * @param {TocsinNotification} n
   */
  notify(n) {
    if (!this.o.enabled || typeof Notification === "undefined") return;
    if (Notification.permission !== "granted") return;
    if (document.visibilityState !== "hidden") return;
    if (n.priority !== "urgent" && n.priority !== "high") return;
    try {
      const os = new Notification(n.title, {
        body: n.body || "",
        tag: n.id, // one OS notification per id, however many tabs show it
        requireInteraction: n.priority === "urgent",
        data: { id: n.id, url: safeUrl(n.url) },
      });
      os.onclick = (e) => {
        e.preventDefault();
        try {
          window.focus();
        } catch {
          /* ignore */
        }
        this.o.onClick(n.id);
        os.close();
      };
      os.onclose = () => {
        if (this.shown.get(n.id) === os) this.shown.delete(n.id);
      };
      this.shown.set(n.id, os);
    } catch (err) {
      console.warn("tocsin: could not show a browser notification", err);
    }
  }

  /** Close the system notification of `id` (it was read or removed). @param {string} id */
  close(id) {
    const os = this.shown.get(id);
    if (os) {
      this.shown.delete(id);
      os.close();
    }
  }

  watchPermission() {
    try {
      navigator.permissions?.query({ name: /** @type {PermissionName} */ ("notifications") })
        .then((st) => {
          st.onchange = () => this.o.onChange();
        })
        .catch(() => {});
    } catch {
      /* not supported */
    }
  }
}
