/** The views. Hash history: the same build is served over http:// by the daemon and app:// by the desktop. */
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router';
import FilesView from './views/FilesView.vue';

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/files' },
  { path: '/files', name: 'files', component: FilesView, meta: { title: 'Files' } },
  { path: '/vault', name: 'vault', component: () => import('./views/VaultView.vue'), meta: { title: 'Vault' } },
  { path: '/network', name: 'network', component: () => import('./views/NetworkView.vue'), meta: { title: 'Network' } },
  { path: '/accounts', name: 'accounts', component: () => import('./views/AccountsView.vue'), meta: { title: 'Accounts' } },
  { path: '/settings', name: 'settings', component: () => import('./views/SettingsView.vue'), meta: { title: 'Settings' } },
  { path: '/logs', name: 'logs', component: () => import('./views/LogsView.vue'), meta: { title: 'Logs' } },
];

export function createAppRouter() {
  const router = createRouter({ history: createWebHashHistory(), routes });
  router.afterEach((to) => {
    document.title = `${String(to.meta.title ?? '')} · SafeVault`;
  });
  return router;
}
