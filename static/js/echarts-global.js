// Loads ECharts (the ESM build shipped by a PyPI package, see settings.STATICFILES_DIRS) and
// exposes it as window.echarts for page scripts. Include it as a module before a page's own
// module script: <script type="module" src="{% static 'js/echarts-global.js' %}"></script>
import * as echarts from "../vendor/echarts/echarts.esm.min.js";

window.echarts = echarts;
window.dispatchEvent(new Event("echarts:ready"));
