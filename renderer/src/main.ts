/** Chooses the host bridge once, then starts the app (or the "not authorised" screen, which calls nothing). */
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import './styles/tokens.css';
import './styles/base.css';
import { chooseBridge } from './api/index.ts';
import App from './App.vue';
import NotAuthorised from './views/NotAuthorised.vue';
import { createAppRouter } from './router.ts';
import { startSession } from './stores/session.ts';

// Before the router exists: it must not see the token fragment.
const client = chooseBridge();
if (client) {
  const app = createApp(App).use(createPinia()).use(createAppRouter());
  startSession(client);
  app.mount('#app');
} else {
  createApp(NotAuthorised).mount('#app');
}
