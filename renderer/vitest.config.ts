/** Store and component tests: the renderer's own build config, in happy-dom. */
import { mergeConfig } from 'vite';
import { renderer } from '../electron.vite.config.ts';

export default mergeConfig(renderer, {
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.ts'],
  },
});
