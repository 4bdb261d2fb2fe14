/**
 * The daemon prints a URL with its token in the fragment (never sent to a server, never in logs).
 * The page moves it into session storage and out of the address bar, so it isn't bookmarked or shared.
 */
const KEY = 'safevault.token';

export function takeToken(
  location: Pick<Location, 'hash' | 'pathname' | 'search'> = window.location,
  storage: Storage = window.sessionStorage,
  history: Pick<History, 'replaceState' | 'state'> = window.history,
): string | null {
  const fromFragment = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (fromFragment) {
    storage.setItem(KEY, fromFragment);
    history.replaceState(history.state, '', location.pathname + location.search);
    return fromFragment;
  }
  return storage.getItem(KEY);
}
