// The example page: signs in through POST /token, then calls, streams,
// cancels, listens and is refused through one RelayClient. No framework:
// the DOM and @wsrelay/client only.
import { RelayClient } from '@wsrelay/client';

interface SignIn {
  token: string;
  relayUrl: string;
  expiresIn: number;
}
interface Order {
  id: number;
  item: string;
  quantity: number;
}
interface Notice {
  kind: 'cancelled';
  id: string;
  afterMs: number;
  reason: string;
}
interface ChatMessage {
  from: string;
  text: string;
}

/** What the page's token lets it subscribe to. */
const SUBSCRIPTIONS = ['orders.>', 'chat.>'];
const SHOWN_EVENTS = 8;
const SLOW_SECONDS = 30;

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

function onClick(id: string, action: () => Promise<void> | void): void {
  element(id).addEventListener('click', () => void action());
}

function setDisabled(id: string, disabled: boolean): void {
  element<HTMLButtonElement>(id).disabled = disabled;
}

/** A failure as the page shows it: a relay error's code first (FORBIDDEN, TIMEOUT, ...), else a handler's message. */
function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (typeof code === 'string') return `${code}: ${String(message)}`;
    if (typeof message === 'string') return message;
  }
  return String(err);
}

/** Shows a failure as its code (FORBIDDEN, ...) beside its message. */
function showFailure(out: HTMLElement, err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') {
    out.textContent = describe(err);
    return;
  }
  const chip = document.createElement('code');
  chip.className = 'failure';
  chip.textContent = code;
  out.replaceChildren(chip, ` ${String((err as { message?: unknown }).message)}`);
}

function showState(state: string, text = state): void {
  const badge = element('status');
  badge.dataset.state = state;
  badge.textContent = text;
}

async function fetchToken(name: string): Promise<SignIn> {
  const response = await fetch('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`sign-in refused: HTTP ${response.status}`);
  return (await response.json()) as SignIn;
}

async function signIn(name: string): Promise<RelayClient> {
  const first = await fetchToken(name);
  let unused: string | undefined = first.token;
  const client = new RelayClient({
    url: first.relayUrl,
    // Asked on every (re)connect and when the relay warns that the token expires: a fresh token each time.
    token: async () => {
      const token = unused ?? (await fetchToken(name)).token;
      unused = undefined;
      return token;
    },
    subscriptions: SUBSCRIPTIONS,
    reconnect: { maxDelayMs: 2_000 },
  });
  client.on('connected', () => showState(client.state));
  client.on('disconnected', () => showState(client.state));
  client.on('reconnecting', () => showState(client.state));
  client.onEvent(showEvent);
  showState('connecting');
  try {
    await client.connect();
  } catch (err) {
    await client.close();
    throw err;
  }
  showState(client.state);
  return client;
}

function showEvent(subject: string, data: unknown): void {
  if (subject === 'chat.notice' && isNotice(data)) confirmCancellation(data);
  const code = document.createElement('code');
  code.textContent = subject;
  const text = document.createElement('span');
  text.textContent = summary(subject, data);
  const item = document.createElement('li');
  item.append(code, text);
  const list = element('events');
  list.prepend(item);
  while (list.children.length > SHOWN_EVENTS) list.lastElementChild?.remove();
}

function summary(subject: string, data: unknown): string {
  if (subject === 'orders.created') {
    const order = data as Order;
    return `#${order.id}: ${order.quantity} × ${order.item}`;
  }
  if (subject === 'chat.message') {
    const message = data as ChatMessage;
    return `${message.from}: ${message.text}`;
  }
  if (subject === 'chat.notice') return `the provider stopped ${(data as Notice).id}`;
  return JSON.stringify(data);
}

async function countTo(client: RelayClient, to: number): Promise<void> {
  const list = element('count-values');
  const state = element('count-state');
  list.replaceChildren();
  state.textContent = 'streaming…';
  setDisabled('count', true);
  try {
    for await (const value of client.stream<number>('count', to)) {
      const item = document.createElement('li');
      item.textContent = String(value);
      list.append(item);
    }
    state.textContent = 'done';
  } catch (err) {
    state.textContent = describe(err);
  } finally {
    setDisabled('count', false);
  }
}

let slowCall: AbortController | undefined;
let jobs = 0;

async function startSlow(client: RelayClient): Promise<void> {
  const id = `job-${++jobs}`;
  const controller = (slowCall = new AbortController());
  const state = element('slow-state');
  state.textContent = `${id} running (${SLOW_SECONDS} s)…`;
  element('slow-confirmation').textContent = '';
  setDisabled('slow-start', true);
  setDisabled('slow-cancel', false);
  try {
    state.textContent = await client.call<string>('slow', { id, seconds: SLOW_SECONDS }, { signal: controller.signal, timeoutMs: 60_000 });
  } catch (err) {
    state.textContent = controller.signal.aborted ? `${id} cancelled` : describe(err);
  } finally {
    slowCall = undefined;
    setDisabled('slow-start', false);
    setDisabled('slow-cancel', true);
  }
}

/** A provider's notice as it sends one (anything else is shown as an event only). */
function isNotice(data: unknown): data is Notice {
  const n = data as Partial<Notice> | null;
  return typeof n === 'object' && n !== null && typeof n.id === 'string' && typeof n.afterMs === 'number' && typeof n.reason === 'string';
}

function confirmCancellation(notice: Notice): void {
  const seconds = (notice.afterMs / 1000).toFixed(1);
  element('slow-confirmation').textContent = `Provider: ${notice.id} stopped after ${seconds} s (its ctx.signal aborted: ${notice.reason})`;
}

async function emitChat(client: RelayClient, from: string): Promise<void> {
  const out = element('chat-result');
  try {
    const ack = await client.emit('chat.message', { from, text: element<HTMLInputElement>('chat-text').value });
    out.textContent = `delivered to ${ack.recipients} subscriber(s)`;
  } catch (err) {
    out.textContent = describe(err);
  }
}

/** Runs something the token does not allow and shows the refusal. */
async function showRefusal(id: string, attempt: () => Promise<unknown>): Promise<void> {
  const out = element(id);
  out.textContent = '…';
  try {
    await attempt();
    out.textContent = 'allowed (unexpected)';
  } catch (err) {
    showFailure(out, err);
  }
}

function wire(client: RelayClient, name: string): void {
  onClick('greet', async () => {
    const out = element('greet-result');
    out.textContent = 'calling…';
    try {
      out.textContent = await client.call<string>('greet', name);
    } catch (err) {
      showFailure(out, err);
    }
  });
  onClick('count', () => countTo(client, 5));
  onClick('slow-start', () => startSlow(client));
  onClick('slow-cancel', () => slowCall?.abort());
  element('chat').addEventListener('submit', event => {
    event.preventDefault();
    void emitChat(client, name);
  });
  onClick('forbidden-call', () => showRefusal('forbidden-call-result', () => client.call('admin.reset', {})));
  onClick('forbidden-emit', () => showRefusal('forbidden-emit-result', () => client.emit('audit.x', { by: name })));
  for (const button of document.querySelectorAll<HTMLButtonElement>('.needs-client')) button.disabled = false;
}

element('signin').addEventListener('submit', event => {
  event.preventDefault();
  const name = element<HTMLInputElement>('name').value.trim();
  const fields = element<HTMLFormElement>('signin').elements;
  for (const field of fields) (field as HTMLInputElement).disabled = true;
  signIn(name).then(
    client => {
      element('who').textContent = `Signed in as ${name} (node ${client.nodeId}).`;
      wire(client, name);
    },
    (err: unknown) => {
      showState('failed', 'not connected');
      element('who').textContent = describe(err);
      for (const field of fields) (field as HTMLInputElement).disabled = false;
    },
  );
});
