/** The renderer alone, for `npm run build:renderer`: the very section electron-vite builds. */
import { renderer } from '../electron.vite.config.ts';

export default renderer;
